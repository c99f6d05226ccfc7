"""The policy (and self-judge) on an OpenAI-compatible server: vLLM, SGLang or llama.cpp's llama-server.

Same protocol as TransformersBackend for what the strategies use: `generate` (one continuation
per prompt; the rows of a round go out concurrently, bounded by `concurrency`), `chat_prompt`,
`count_tokens`, `name`, `params`; and, for the self-judge, `next_token_top_logprobs` (the server's
top log-probabilities of the next token, not the full vocabulary). Hidden-state verifiers (probe,
trained PRM) need the weights in process and say so.

Prompts: with a local tokenizer of the served model (an embedded model's, or a hub id in the local
cache) the chat template is rendered here and sent to /v1/completions, so the text the model
continues is exactly the in-process one. Without one, `chat_prompt` returns a ChatPrompt (a str
that keeps its messages) and `generate` sends it to /v1/chat/completions with the partial
solution as a final assistant message to continue (vLLM's `continue_final_message`).

One request per row, each with its own seed (seed + row), so a row's text depends on its seed
only, not on which other rows share its batch; the server batches concurrent requests itself
(llama-server: parallel slots; vLLM: continuous batching) and reuses shared prefixes
(llama-server `cache_prompt`, vLLM `--enable-prefix-caching`).
"""

from __future__ import annotations

import json
import os
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from typing import Any, Sequence

from ..models import ModelError
from ..trace import ModelCompute
from .transformers_backend import Cancelled, Generation

API_KEY_ENV = ("TTS_VIZ_API_KEY", "OPENAI_API_KEY")
PREFIX = "openai:"


class ServerError(ModelError):
    """A model server failed in a way the user can act on; the message says how."""


def parse_server_name(name: str) -> tuple[str, str]:
    """'openai:MODEL@URL' -> (MODEL, URL). The model is what the server serves it as."""
    if not name.startswith(PREFIX) or "@" not in name[len(PREFIX):]:
        raise ServerError(f"A served model is named openai:MODEL@URL (e.g. openai:qwen2.5-coder-0.5b@http://127.0.0.1:8080), "
                          f"got {name!r}.")
    model, url = name[len(PREFIX):].split("@", 1)
    url = server_root(url)
    if not model.strip() or not url.startswith(("http://", "https://")):
        raise ServerError(f"{name!r}: give a model name and an http(s):// URL, as openai:MODEL@http://host:port.")
    return model.strip(), url


def server_root(url: str) -> str:
    """A server URL as the client uses it: no surrounding blanks, no trailing "/" or "/v1"."""
    url = url.strip().rstrip("/")
    return url[:-3] if url.endswith("/v1") else url


def is_server_name(name: str | None) -> bool:
    return bool(name) and name.startswith(PREFIX)


class ChatPrompt(str):
    """A prompt for a server without a local chat template: its text (for logs and traces) plus
    the messages and the assistant's partial turn that /v1/chat/completions is asked to continue."""

    messages: list[dict[str, str]]
    continuation: str

    def __new__(cls, messages: list[dict[str, str]], continuation: str = ""):
        text = "\n".join(f"<{m['role']}> {m['content']}" for m in messages) + "\n<assistant> " + continuation
        obj = str.__new__(cls, text)
        obj.messages, obj.continuation = messages, continuation
        return obj


def _api_key() -> str | None:
    for var in API_KEY_ENV:
        if os.environ.get(var):
            return os.environ[var]
    return None


class ServerClient:
    """HTTP to one server: JSON in and out, timeouts, bounded retries, messages a user can act on."""

    def __init__(self, url: str, timeout: float = 120.0, retries: int = 2, api_key: str | None = None) -> None:
        import httpx

        self.url = url
        self.timeout = timeout
        self.retries = retries
        headers = {"Content-Type": "application/json"}
        key = api_key or _api_key()
        if key:
            headers["Authorization"] = f"Bearer {key}"
        self._http = httpx.Client(base_url=url, headers=headers,
                                  timeout=httpx.Timeout(timeout, connect=min(10.0, timeout)),
                                  limits=httpx.Limits(max_connections=64, max_keepalive_connections=64))

    def close(self) -> None:
        self._http.close()

    def request(self, method: str, path: str, body: dict | None = None, what: str = "") -> Any:
        import httpx

        what = what or path
        last = None
        for attempt in range(self.retries + 1):
            try:
                r = self._http.request(method, path, json=body)
            except httpx.ConnectError as e:
                last = ServerError(f"The model server at {self.url} is not reachable ({_reason(e)}). "
                                   f"Is it running, and is the URL right?")
            except httpx.TimeoutException:
                last = ServerError(f"The model server at {self.url} did not answer {what} within {self.timeout:g} s "
                                   f"(tried {attempt + 1} times).")
            except httpx.HTTPError as e:
                last = ServerError(f"The model server at {self.url} failed on {what}: {type(e).__name__}: {e}")
            else:
                if r.status_code in (429, 500, 502, 503, 504) and attempt < self.retries:
                    last = ServerError(f"The model server at {self.url} answered {what} with HTTP {r.status_code}.")
                else:
                    return self._decode(r, path, what)
            if attempt < self.retries:
                time.sleep(0.5 * 2 ** attempt)
        raise last

    def _decode(self, r, path: str, what: str) -> Any:
        if r.status_code == 404:
            detail = _error_text(r)
            if "model" in detail.lower():  # vLLM: "The model `x` does not exist."
                raise ServerError(f"The model server at {self.url} does not serve that model ({detail}).")
            raise ServerError(f"The model server at {self.url} has no {path} endpoint (HTTP 404"
                              f"{': ' + detail if detail else ''}).")
        if r.status_code in (401, 403):
            raise ServerError(f"The model server at {self.url} refused the request (HTTP {r.status_code}): set its API key "
                              f"in {API_KEY_ENV[0]} or {API_KEY_ENV[1]}.")
        if r.status_code >= 400:
            raise ServerError(f"The model server at {self.url} answered {what} with HTTP {r.status_code}: {_error_text(r)}")
        try:
            return r.json()
        except (json.JSONDecodeError, ValueError):
            raise ServerError(f"The model server at {self.url} answered {what} with something that is not JSON: "
                              f"{r.text[:200]!r}") from None

    def models(self) -> list[dict]:
        """/v1/models' entries: {id, owned_by, ...}."""
        data = self.request("GET", "/v1/models", what="the model list")
        try:
            return [dict(m, id=str(m["id"])) for m in data["data"]]
        except (KeyError, TypeError):
            raise ServerError(f"The model server at {self.url} answered /v1/models with an unexpected shape: "
                              f"{json.dumps(data)[:200]}") from None


def _token_logprobs(lp) -> list[float] | None:
    """Each generated token's log-probability from a choice's `logprobs`: the completions shape
    (`token_logprobs`, vLLM and OpenAI) or the chat shape (`content[].logprob`, llama-server's for both)."""
    if not isinstance(lp, dict):
        return None
    if isinstance(lp.get("token_logprobs"), list):
        return [float(x) for x in lp["token_logprobs"] if isinstance(x, (int, float))]
    if isinstance(lp.get("content"), list):
        return [float(it["logprob"]) for it in lp["content"] if isinstance(it, dict) and "logprob" in it]
    return None


def _prompt_counts(data: dict) -> tuple[int, int]:
    """(prompt tokens the server ran, prompt tokens it took from its cache) from `usage`."""
    usage = data.get("usage") or {}
    cached = int(((usage.get("prompt_tokens_details") or {}).get("cached_tokens")) or 0)
    return int(usage.get("prompt_tokens") or 0) - cached, cached


def _reason(e: Exception) -> str:
    text = str(e) or type(e).__name__
    return "connection refused" if "refused" in text.lower() else text[:120]


def _error_text(r) -> str:
    try:
        data = r.json()
    except ValueError:
        return r.text[:200]
    err = data.get("error", data) if isinstance(data, dict) else data
    if isinstance(err, dict):
        return str(err.get("message") or err)[:300]
    return str(err)[:300]


def list_models(url: str, timeout: float = 10.0) -> list[str]:
    """The models a server serves (the app's "check" button)."""
    if not url.startswith(("http://", "https://")):
        raise ServerError(f"A model server URL starts with http:// or https://, got {url!r}.")
    client = ServerClient(server_root(url), timeout=timeout, retries=0)
    try:
        return [m["id"] for m in client.models()]
    finally:
        client.close()


def local_tokenizer(model: str):
    """The served model's tokenizer from this machine, or None: an embedded model's (its warm
    cache, else read from its GGUF), else a hub id already in the local cache. Never downloads."""
    from ..models import embedded_tokenizer, is_embedded

    try:
        if is_embedded(model):
            return embedded_tokenizer(model)
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(model, local_files_only=True)
    except (OSError, ValueError, ModelError):
        return None


class OpenAIBackend:
    can_stop_rows = False  # a request is answered whole: DeepConf's early stop runs offline only

    def __init__(self, model: str, url: str, tokenizer: Any = None, concurrency: int = 16, timeout: float = 120.0,
                 retries: int = 2, params: int | None = None, check: bool = True) -> None:
        self.model = model
        self.url = url
        self.name = f"{PREFIX}{model}@{url}"
        self.tokenizer = tokenizer
        self.concurrency = max(1, int(concurrency))
        self.client = ServerClient(url, timeout=timeout, retries=retries)
        self.prefix_store = None  # the server keeps its own prefix cache
        self.precision = "served (the server's choice)"
        self.params = int(params or 0)
        self.kind = "openai"  # "llama.cpp" once /v1/models says so: it gets llama-server's own fields
        if check:
            self.check_model()

    @classmethod
    def from_name(cls, name: str, **kw) -> "OpenAIBackend":
        model, url = parse_server_name(name)
        kw.setdefault("tokenizer", local_tokenizer(model))
        if "params" not in kw:
            from ..models import EMBEDDED

            kw["params"] = EMBEDDED[model].params if model in EMBEDDED else None
        return cls(model, url, **kw)

    def check_model(self) -> None:
        entries = self.client.models()
        served = [m["id"] for m in entries]
        if any(m.get("owned_by") == "llamacpp" for m in entries):
            self.kind = "llama.cpp"
        if self.model not in served:
            raise ServerError(f"The model server at {self.url} does not serve {self.model!r}; it serves: "
                              f"{', '.join(served) or 'nothing'}. Name one of those (openai:MODEL@{self.url}).")

    # ----------------------------------------------------------------------------------------
    def chat_prompt(self, messages: list[dict[str, str]], continuation: str = "") -> str:
        if self.tokenizer is not None and getattr(self.tokenizer, "chat_template", None):
            text = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
            return text + continuation
        return ChatPrompt(messages, continuation)

    def count_tokens(self, text: str) -> int:
        if self.tokenizer is not None:
            return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])
        return max(1, len(text) // 4)  # no tokenizer here: the usual 4 characters per token

    # ----------------------------------------------------------------------------------------
    def generate(self, prompts: Sequence[str], max_new_tokens: int, temperature: float = 0.8, top_p: float = 1.0,
                 stop: Sequence[str] = (), seed: int = 0, cancel: threading.Event | None = None,
                 compute: ModelCompute | None = None, min_new_tokens: int = 0, on_done=None,
                 logprobs: bool = False, stop_row=None) -> list[Generation]:
        """One continuation per prompt, all rows in flight at once (up to `concurrency`).
        logprobs: each Generation carries its tokens' log-probabilities (the server's). A server
        answers whole, so stop_row cannot end a row early here (can_stop_rows is False)."""
        t0 = time.perf_counter()
        bodies = [self._completion_body(p, max_new_tokens, temperature, top_p, stop, seed + i, min_new_tokens)
                  for i, p in enumerate(prompts)]
        if logprobs:  # the sampled token's own log-probability: chat takes a flag, completions a count
            for body in bodies:
                body["logprobs"] = True if "messages" in body else 1
        results = self._run_all(bodies, cancel, lambda i, res: on_done(i, res[0]) if on_done else None,
                                lambda body, res: self._generation(body, res, stop))
        if compute is not None:
            compute.add(prompt_tokens=sum(r[1] for r in results), generated_tokens=sum(r[0].tokens for r in results),
                        seconds=time.perf_counter() - t0, reused_tokens=sum(r[2] for r in results))
        return [r[0] for r in results]

    def next_token_top_logprobs(self, prompts: Sequence[str], k: int = 20,
                                compute: ModelCompute | None = None) -> list[dict[str, float]]:
        """The server's top-k log-probabilities of the token after each prompt: {token text: logprob}."""
        t0 = time.perf_counter()
        bodies = []
        for p in prompts:
            body = self._completion_body(p, 1, 0.0, 1.0, (), 0, 0)
            if "messages" in body:
                body.update(logprobs=True, top_logprobs=k)
            else:
                body["logprobs"] = k
            bodies.append(body)
        results = self._run_all(bodies, None, None, self._top_logprobs)
        if compute is not None:
            compute.add(prompt_tokens=sum(r[1] for r in results), seconds=time.perf_counter() - t0,
                        reused_tokens=sum(r[2] for r in results))
        return [r[0] for r in results]

    # ----- requests -----------------------------------------------------------------------------
    def _completion_body(self, prompt: str, max_tokens: int, temperature: float, top_p: float, stop: Sequence[str],
                         seed: int, min_tokens: int) -> dict:
        body: dict[str, Any] = {"model": self.model, "max_tokens": int(max_tokens), "temperature": float(temperature),
                                "top_p": float(top_p), "seed": int(seed), "stream": False}
        if self.kind == "llama.cpp":
            # cache_prompt: the slot keeps its KV for the next step; verbose: its stop_type tells a
            # stop string from EOS (llama-server drops the string and says "stop" for both)
            body.update(cache_prompt=True, verbose=True)
        if stop:
            body["stop"] = list(stop)
            if self.kind != "llama.cpp":  # vLLM appends the stop string when asked: the same distinction
                body["include_stop_str_in_output"] = True
        if min_tokens:
            body["min_tokens"] = int(min_tokens)
        if isinstance(prompt, ChatPrompt):
            msgs = list(prompt.messages)
            if prompt.continuation:
                msgs.append({"role": "assistant", "content": prompt.continuation})
                body.update(continue_final_message=True, add_generation_prompt=False)
            body["messages"] = msgs
        else:
            body["prompt"] = str(prompt)
        return body

    def _post(self, body: dict) -> dict:
        path = "/v1/chat/completions" if "messages" in body else "/v1/completions"
        data = self.client.request("POST", path, body, what=path)
        if not isinstance(data, dict) or not isinstance(data.get("choices"), list) or not data["choices"]:
            raise ServerError(f"The model server at {self.url} answered {path} with an unexpected shape "
                              f"(no choices): {json.dumps(data)[:200]}")
        return data

    def _run_all(self, bodies: list[dict], cancel, on_each, convert) -> list:
        """Send every body (bounded concurrency); results in input order. A set cancel stops sending
        at once and raises Cancelled (requests already at the server finish there, unread)."""
        if cancel is not None and cancel.is_set():
            raise Cancelled()
        out: list = [None] * len(bodies)
        if not bodies:
            return out
        pool = ThreadPoolExecutor(max_workers=min(self.concurrency, len(bodies)), thread_name_prefix="tts-viz-server")
        try:
            futures = {pool.submit(self._post, b): i for i, b in enumerate(bodies)}
            pending = set(futures)
            while pending:
                done, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
                for f in done:
                    i = futures[f]
                    out[i] = convert(bodies[i], f.result())
                    if on_each is not None:
                        on_each(i, out[i])
                if cancel is not None and cancel.is_set():
                    raise Cancelled()
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
        return out

    def _generation(self, body: dict, data: dict, stop: Sequence[str]) -> tuple[Generation, int, int]:
        choice = data["choices"][0]
        text = choice.get("text")
        if text is None:
            text = (choice.get("message") or {}).get("content")
        if not isinstance(text, str):
            raise ServerError(f"The model server at {self.url} sent a choice without text: {json.dumps(choice)[:200]}")
        tokens = int((data.get("usage") or {}).get("completion_tokens") or 0) or (self.count_tokens(text) if text else 0)
        gen = Generation(*self._finish(text, tokens, choice, stop, data))
        if body.get("logprobs"):
            gen.logprobs = _token_logprobs(choice.get("logprobs"))
        return (gen, *_prompt_counts(data))

    def _finish(self, text: str, tokens: int, choice: dict, stop: Sequence[str], data: dict) -> tuple[str, int, str]:
        """(text cut before the stop string, tokens, finish word) as TransformersBackend gives them."""
        reason = choice.get("finish_reason")
        stop_reason = choice.get("stop_reason")  # vLLM: the stop string, a stop token id, or None (EOS)
        for s in stop:
            k = text.find(s)
            if k != -1:  # the server included the stop string (or generated it before stopping)
                return text[:k], tokens, "stop"
        if reason == "length":
            return text, tokens, "length"
        if reason == "stop":
            if isinstance(stop_reason, str) and stop_reason in stop:
                return text, tokens, "stop"
            if stop and self._stopped_on_word(choice, data):
                return text, tokens, "stop"
            return text, tokens, "eos"
        if reason in (None, "abort", "cancelled"):
            return text, tokens, "cancelled" if reason else "length"
        return text, tokens, "eos"

    @staticmethod
    def _stopped_on_word(choice: dict, data: dict) -> bool:
        """llama-server's __verbose.stop_type ("word", "eos", "limit") for a response without the stop string."""
        verbose = data.get("__verbose") or choice.get("__verbose") or {}
        return (verbose.get("stop_type") or choice.get("stop_type")) == "word"

    def _top_logprobs(self, body: dict, data: dict) -> tuple[dict[str, float], int, int]:
        choice = data["choices"][0]
        lp = choice.get("logprobs")
        top: dict[str, float] | None = None
        if isinstance(lp, dict):
            if isinstance(lp.get("top_logprobs"), list) and lp["top_logprobs"]:  # completions (vLLM, OpenAI)
                first = lp["top_logprobs"][0]
                if isinstance(first, dict):
                    top = {str(t): float(v) for t, v in first.items()}
            elif isinstance(lp.get("content"), list) and lp["content"]:  # chat format (llama-server uses it for both)
                first = lp["content"][0]
                items = first.get("top_logprobs") or [first]
                top = {str(it["token"]): float(it["logprob"]) for it in items if "token" in it and "logprob" in it}
        if not top:
            raise ServerError(f"The model server at {self.url} returned no logprobs for the next token: the self-judge "
                              f"needs a server that returns top log-probabilities (vLLM: --max-logprobs >= 20; "
                              f"llama-server returns them by default).")
        return (top, *_prompt_counts(data))
