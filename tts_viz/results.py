"""Reading a results file (JSONL rows of the sweep): shared by the study that writes it and the views
that draw it, so neither has to import the other."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def load_results(path: str | Path) -> list[dict[str, Any]]:
    """All complete rows of a results file (a truncated or garbled line is skipped). [] if absent."""
    path = Path(path)
    if not path.exists():
        return []
    rows = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(row, dict):
                rows.append(row)
    return rows
