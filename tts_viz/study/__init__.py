"""The study commands: sweep, fit-table and scaling-report (sweep.py), prm-eval (prm_eval.py),
train-probe (train_probe.py), bench (bench.py). They drive the engine over many problems and write
results files; the engine and the views never import them (cli.py dispatches to them)."""
