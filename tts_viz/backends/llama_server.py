"""Start and stop llama.cpp's `llama-server` on an embedded GGUF: the real server the tests and the
bench drive (scripts/build-llama-server.sh builds the binary once per machine).

    with LlamaServer.start("qwen2.5-coder-0.5b", slots=16) as srv:
        run --policy openai:qwen2.5-coder-0.5b@{srv.url}
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

from ..models import ModelError, cache_dir

BUILD_SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "build-llama-server.sh"


def find_binary() -> Path | None:
    """$TTS_VIZ_LLAMA_SERVER, the project's cached build, or one on PATH."""
    env = os.environ.get("TTS_VIZ_LLAMA_SERVER")
    if env and Path(env).is_file():
        return Path(env)
    for p in sorted((cache_dir() / "llama-server").glob("*/bin/llama-server"), reverse=True):
        if os.access(p, os.X_OK):
            return p
    found = shutil.which("llama-server")
    return Path(found) if found else None


def build_binary() -> Path:
    """The cached build, building it first where there is none (minutes, once per machine)."""
    found = find_binary()
    if found:
        return found
    out = subprocess.run(["bash", str(BUILD_SCRIPT)], capture_output=True, text=True)
    if out.returncode != 0:
        raise ModelError(f"Building llama-server failed: {out.stderr[-800:]}")
    return Path(out.stdout.strip().splitlines()[-1])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LlamaServer:
    def __init__(self, proc: subprocess.Popen, url: str, alias: str, log: Path) -> None:
        self.proc, self.url, self.alias, self.log = proc, url, alias, log

    @property
    def policy_name(self) -> str:
        return f"openai:{self.alias}@{self.url}"

    @classmethod
    def start(cls, model: str, slots: int = 16, ctx_per_slot: int = 1536, threads: int | None = None,
              binary: Path | None = None, port: int | None = None, timeout: float = 180.0,
              extra: list[str] | None = None) -> "LlamaServer":
        from ..models import gguf_path

        binary = binary or build_binary()
        gguf, _ = gguf_path(model)
        port = port or free_port()
        log = Path(os.environ.get("TMPDIR", "/tmp")) / f"llama-server-{port}.log"
        args = [str(binary), "-m", str(gguf), "--alias", model, "--host", "127.0.0.1", "--port", str(port),
                "-np", str(slots), "-c", str(slots * ctx_per_slot), "-t", str(threads or os.cpu_count() or 2),
                "--no-webui", *(extra or [])]
        proc = subprocess.Popen(args, stdout=open(log, "w"), stderr=subprocess.STDOUT)
        srv = cls(proc, f"http://127.0.0.1:{port}", model, log)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise ModelError(f"llama-server exited ({proc.returncode}): {log.read_text()[-800:]}")
            try:
                with urllib.request.urlopen(srv.url + "/health", timeout=2) as r:
                    if r.status == 200:
                        return srv
            except OSError:
                pass
            time.sleep(0.5)
        srv.stop()
        raise ModelError(f"llama-server did not become ready within {timeout:g} s: {log.read_text()[-800:]}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> "LlamaServer":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
