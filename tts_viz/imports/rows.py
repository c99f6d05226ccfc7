"""Rows of a local JSONL, JSON (a list of objects) or Parquet file, read lazily: only the first
`limit` rows are parsed, so a large file opens at once."""

from __future__ import annotations

import json
from itertools import islice
from pathlib import Path
from typing import Any, Iterator


def iter_rows(path: str | Path) -> Iterator[dict[str, Any]]:
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"{p.name}: file not found")
    suffix = p.suffix.lower()
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        for batch in pq.ParquetFile(p).iter_batches(batch_size=256):
            yield from batch.to_pylist()
    elif suffix == ".json":
        data = json.loads(p.read_text(encoding="utf-8"))
        rows = data if isinstance(data, list) else data.get("rows") if isinstance(data, dict) else None
        if not isinstance(rows, list):
            raise ValueError(f"{p.name}: a JSON file must hold a list of rows")
        yield from rows
    else:
        with p.open(encoding="utf-8") as f:
            for lineno, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                try:
                    yield json.loads(line)
                except json.JSONDecodeError as e:
                    raise ValueError(f"{p.name}:{lineno}: invalid JSON ({e.msg})") from None


def read_rows(path: str | Path, limit: int | None = None) -> list[dict[str, Any]]:
    return list(islice(iter_rows(path), limit))


def require(row: Any, columns: dict[str, type | tuple], where: str, fmt: str) -> None:
    """ValueError naming every missing or mistyped column of a row of format `fmt`."""
    if not isinstance(row, dict):
        raise ValueError(f"{where}: a {fmt} row must be an object, got {type(row).__name__}")
    missing = [c for c in columns if c not in row]
    if missing:
        raise ValueError(f"{where}: not a {fmt} row: missing column(s) {', '.join(missing)} "
                         f"(has {', '.join(sorted(map(str, row))[:12])})")
    wrong = [c for c, t in columns.items() if not isinstance(row[c], t)]
    if wrong:
        raise ValueError(f"{where}: {fmt} column(s) of the wrong type: {', '.join(wrong)}")
