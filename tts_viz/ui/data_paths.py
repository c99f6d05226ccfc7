"""Which local files a browser user may open (the app's JSONL path box).

A hosted app is public: a path typed in the page must not read any file on the server, and its
error must not say whether a file outside the allowed folders exists. Allowed: the folders in
$TTS_VIZ_DATA_DIRS (separated by os.pathsep), else the data folder beside the project
(../shared/data, where this project's GSM8K and MATH-500 files live) and the package's own
assets/examples. A path is resolved (symlinks, "..") before it is checked.
"""

from __future__ import annotations

import os
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DIRS = (_ROOT.parent / "shared" / "data", _ROOT / "assets" / "examples")
SUFFIXES = (".jsonl", ".json")


def allowed_dirs() -> list[Path]:
    env = os.environ.get("TTS_VIZ_DATA_DIRS", "")
    dirs = [Path(d).expanduser() for d in env.split(os.pathsep) if d.strip()] if env.strip() else list(DEFAULT_DIRS)
    return [d.resolve() for d in dirs]


def _where() -> str:
    names = [d.name or str(d) for d in allowed_dirs()]
    return ", ".join(names) if names else "none"


def check_data_path(text: str) -> Path:
    """The resolved path if it lies in an allowed folder and is a .jsonl/.json file; else ValueError
    whose message names only the allowed folders (never the file, nor whether it exists)."""
    raw = (text or "").strip()
    if not raw:
        raise ValueError("Give the path of a JSONL file in one of the allowed data folders.")
    refusal = (f"This app reads local files only from its data folders ({_where()}), as .jsonl files; "
               "that path is not one of them. The server's operator can allow more with TTS_VIZ_DATA_DIRS.")
    if "\x00" in raw or len(raw) > 1000:
        raise ValueError(refusal)
    p = Path(raw).expanduser()
    if not p.is_absolute():
        p = Path.cwd() / p
    try:
        p = p.resolve()
    except (OSError, RuntimeError):
        raise ValueError(refusal) from None
    if p.suffix.lower() not in SUFFIXES or not any(p.is_relative_to(d) for d in allowed_dirs()):
        raise ValueError(refusal)
    if not p.is_file():
        raise ValueError(f"No such data file in the allowed folders: {p.name}.")
    return p
