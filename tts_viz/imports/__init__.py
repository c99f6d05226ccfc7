"""Readers of the field's data that produce Traces: search-and-learn result rows (sal.py) and
ProcessBench rows (processbench.py), from local JSONL / JSON / Parquet files (rows.py)."""
