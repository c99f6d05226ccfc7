"""Which model servers a browser user may point the app at (Advanced > Model server).

A hosted app is public, and a URL typed in the page makes the server send requests: left open it
would let anyone probe the host's network. Allowed: the URLs in $TTS_VIZ_SERVERS (comma
separated, scheme://host:port), else only this machine's loopback (127.0.0.1, localhost, [::1]) on
any port, which is what a local `make app` next to a local llama-server needs. On a Hugging Face
Space ($SPACE_ID set) loopback is not allowed unless listed.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit

from ..backends.openai_backend import server_root

LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def _origin(url: str) -> tuple[str, str, int | None] | None:
    try:
        u = urlsplit(url.strip())
        port = u.port
    except ValueError:
        return None
    if u.scheme not in ("http", "https") or not u.hostname:
        return None
    return u.scheme, u.hostname.lower(), port


def allowed_servers() -> list[str]:
    return [s.strip().rstrip("/") for s in os.environ.get("TTS_VIZ_SERVERS", "").split(",") if s.strip()]


def check_server_url(url: str) -> str:
    """The URL normalised (no trailing / or /v1), or ValueError saying what this app allows."""
    url = server_root(url or "")
    origin = _origin(url)
    if origin is None:
        raise ValueError("Give the server as http://host:port (e.g. http://127.0.0.1:8080).")
    listed = allowed_servers()
    if listed:
        if origin in {_origin(s) for s in listed}:
            return url
        raise ValueError(f"This app talks only to the model servers its operator listed: {', '.join(listed)}.")
    if origin[1] in LOOPBACK and not os.environ.get("SPACE_ID"):
        return url
    raise ValueError("This app talks only to a model server on this machine (http://127.0.0.1:PORT); "
                     "its operator can allow others in TTS_VIZ_SERVERS.")
