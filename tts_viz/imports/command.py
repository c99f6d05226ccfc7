"""`python -m tts_viz import FILE [--format sal|processbench|prm800k] --out DIR`: one Trace JSON per problem.

The format is guessed from the first row's columns when --format is left out; each written problem
prints one JSON line (index, id, nodes, completions or steps, trace path)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .prm800k import COLUMNS as PRM800K_COLUMNS
from .prm800k import prm800k_trace
from .processbench import COLUMNS as PB_COLUMNS
from .processbench import processbench_trace
from .rows import iter_rows
from .sal import COLUMNS as SAL_COLUMNS
from .sal import sal_trace

READERS = {"sal": sal_trace, "processbench": processbench_trace, "prm800k": prm800k_trace}


def guess_format(row: dict) -> str:
    if isinstance(row, dict) and all(c in row for c in SAL_COLUMNS):
        return "sal"
    if isinstance(row, dict) and all(c in row for c in PB_COLUMNS):
        return "processbench"
    if isinstance(row, dict) and all(c in row for c in PRM800K_COLUMNS):
        return "prm800k"
    have = ", ".join(sorted(map(str, row))[:12]) if isinstance(row, dict) else type(row).__name__
    raise ValueError(f"Cannot tell the format from the columns ({have}): search-and-learn rows need "
                     f"{', '.join(SAL_COLUMNS)}; ProcessBench rows need {', '.join(PB_COLUMNS)}; PRM800K rows need "
                     f"{', '.join(PRM800K_COLUMNS)}. Pass --format.")


def add_import_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", help="a local .jsonl, .json or .parquet file")
    p.add_argument("--format", choices=sorted(READERS), help="default: guessed from the columns")
    p.add_argument("--out", default="runs/imported", help="folder for the trace JSON files")
    p.add_argument("--limit", type=int, help="at most this many rows")


def cmd_import(args) -> int:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    fmt = args.format
    for i, row in enumerate(iter_rows(args.file)):
        if args.limit is not None and i >= args.limit:
            break
        fmt = fmt or guess_format(row)
        trace = READERS[fmt](row, where=f"{Path(args.file).name} row {i}")
        path = out / f"{fmt}-{i:05d}.json"
        trace.save(path)
        info = trace.root.extra.get("imported", {})
        print(json.dumps({"index": i, "id": row.get("unique_id") or row.get("id"), "format": fmt,
                          "nodes": len(trace.nodes), "completions": info.get("completions"),
                          "steps": len(trace.nodes) - 1, "trace": str(path)}))
    return 0


def add_export_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("trace", help="a trace JSON file (saved by the app or the CLI, or imported)")
    p.add_argument("--format", choices=["treelog", "sal"], default="treelog",
                   help="treelog: llm-reasoners' TreeLog JSON; sal: one search-and-learn-style row")
    p.add_argument("--out", help="output file (default: print to stdout)")


def cmd_export(args) -> int:
    from ..trace import Trace
    from .export import to_sal_row, to_treelog

    trace = Trace.load(args.trace)
    data = to_treelog(trace) if args.format == "treelog" else to_sal_row(trace)
    text = json.dumps(data, ensure_ascii=False)
    if args.out:
        Path(args.out).write_text(text + "\n", encoding="utf-8")
        print(json.dumps({"format": args.format, "out": args.out, "nodes": len(trace.nodes)}))
    else:
        print(text)
    return 0
