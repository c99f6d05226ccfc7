"""The model-server backend against a local HTTP handler that answers as vLLM documents it
(completions, chat completions with continue_final_message, top logprobs, /pooling), and every
failure a user can meet, each with its message. The real llama-server run is in
test_llama_server.py."""

from __future__ import annotations

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tts_viz.backends.openai_backend import ChatPrompt, OpenAIBackend, ServerError, list_models, parse_server_name
from tts_viz.backends.transformers_backend import Cancelled
from tts_viz.models import ModelPool
from tts_viz.runner import RunConfig, run_search
from tts_viz.strategies.base import SearchConfig
from tts_viz.trace import CANCELLED, DONE
from tts_viz.verifiers import check_verifier_name, make_verifier
from tts_viz.verifiers.self_judge import p_yes_from_top
from tts_viz.verifiers.served_prm import ServedPRM

MODEL = "stub-policy"


class Stub(BaseHTTPRequestHandler):
    """vLLM-shaped answers. The policy writes 'Step k: k + 1 = k+1' for k = steps so far (the
    seed picks a wrong sum on odd seeds at step 1) and boxes the last sum at step 3."""

    mode = "ok"  # ok | no_logprobs | bad_shape | slow
    models = [{"id": MODEL, "object": "model", "owned_by": "vllm"}]
    owned_by = "vllm"
    requests: list = []

    def log_message(self, *a):  # keep pytest output clean
        pass

    def _send(self, code, obj):
        raw = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def do_GET(self):
        if self.path == "/v1/models":
            return self._send(200, {"object": "list", "data": [dict(m, owned_by=self.owned_by) for m in self.models]})
        self._send(404, {"error": {"message": "Not Found"}})

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append((self.path, body))
        if self.mode == "slow":
            time.sleep(0.3)
        if self.path == "/pooling":
            return self._pooling(body)
        if self.path not in ("/v1/completions", "/v1/chat/completions"):
            return self._send(404, {"error": {"message": "Not Found"}})
        if body.get("model") not in [m["id"] for m in self.models]:
            return self._send(404, {"error": {"message": f"The model `{body.get('model')}` does not exist.",
                                              "type": "NotFoundError", "code": 404}})
        if self.mode == "bad_shape":
            return self._send(200, {"result": "hello"})
        text = body["messages"][-1]["content"] if "messages" in body else body["prompt"]
        if body.get("logprobs"):
            return self._judge(body, text)
        done = text.count("\n\n") if body.get("continue_final_message") or "prompt" in body else 0
        k = done + 1
        wrong = k == 1 and body["seed"] % 2 == 1
        if k < 3:
            step, finish, stop_reason = f"Step {k}: {k} + 1 = {k + 2 if wrong else k + 1}", "stop", "\n\n"
            if body.get("include_stop_str_in_output"):
                step += "\n\n"
        else:
            step, finish, stop_reason = "Therefore, the final answer is: $\\boxed{3}$.", "stop", None
        choice = {"index": 0, "finish_reason": finish, "stop_reason": stop_reason}
        if "messages" in body:
            choice["message"] = {"role": "assistant", "content": step}
        else:
            choice["text"] = step
        self._send(200, {"choices": [choice], "usage": {"prompt_tokens": 20, "completion_tokens": 7,
                                                         "prompt_tokens_details": {"cached_tokens": 5}}})

    def _judge(self, body, text):
        # the judge says Yes to a step with a right sum, No to a wrong one
        last = re.findall(r"Step \d+: Step \d+: (\d+) \+ 1 = (\d+)", text) or re.findall(r"(\d+) \+ 1 = (\d+)", text)
        right = not last or int(last[-1][1]) == int(last[-1][0]) + 1
        if self.mode == "no_logprobs":
            lp = None
        else:
            top = [{"token": "Yes", "logprob": -0.1 if right else -3.0}, {"token": "No", "logprob": -3.0 if right else -0.1},
                   {"token": " yes", "logprob": -5.0}]
            lp = {"content": [{"token": "Yes", "logprob": top[0]["logprob"], "top_logprobs": top}]}
        choice = {"index": 0, "finish_reason": "length", "logprobs": lp}
        choice["message" if "messages" in body else "text"] = {"role": "assistant", "content": "Yes"} if "messages" in body else "Yes"
        self._send(200, {"choices": [choice], "usage": {"prompt_tokens": 30, "completion_tokens": 1}})

    def _pooling(self, body):
        if self.mode == "no_pooling":
            return self._send(404, {"detail": "Not Found"})
        if "messages" in body:  # Qwen2.5-Math-PRM: [negative, positive] per <extra_0>
            content = body["messages"][-1]["content"]
            rows = [[0.2, 0.8] if "= 2" in s or "= 3" in s else [0.9, 0.1] for s in content.split("<extra_0>")[:-1]]
        else:  # Math-Shepherd: ["+", "-"] per tag
            rows = [[0.7, 0.3] for _ in range(body["input"].count("ки"))]
        if self.mode == "pool_all_tokens":
            rows = rows + [[0.5, 0.5]] * 3
        self._send(200, {"id": "pool-1", "object": "list", "data": [{"index": 0, "object": "pooling", "data": rows}],
                         "usage": {"prompt_tokens": 40, "total_tokens": 40}})


@pytest.fixture
def server():
    Stub.mode, Stub.owned_by, Stub.requests = "ok", "vllm", []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Stub)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_names_parse_and_bad_names_say_how():
    assert parse_server_name("openai:Qwen/Qwen2.5-Math-7B@http://gpu:8000/v1/") == ("Qwen/Qwen2.5-Math-7B", "http://gpu:8000")
    with pytest.raises(ServerError, match="openai:MODEL@URL"):
        parse_server_name("openai:just-a-model")
    with pytest.raises(ServerError, match="http"):
        parse_server_name("openai:m@gpu:8000")


def test_beam_search_through_the_server_keeps_the_trace_contract(server):
    """A beam round's rows go out at once, each continuing its own partial solution; the trace
    has the tree, the answer and the server's token counts."""
    cfg = RunConfig(question="Add one, twice.", gold="3", policy=f"openai:{MODEL}@{server}", verifier="self-judge",
                    strategy="beam", search=SearchConfig(n=4, width=2, max_rounds=4, seed=0))
    trace = run_search(cfg, pool=ModelPool())
    assert trace.status == DONE, trace.error
    assert trace.final_answer == "3" and trace.correct
    roots_children = [n for n in trace.nodes if n.depth == 1]
    assert len(roots_children) == 4
    # odd seeds wrote a wrong first step; the judge (via top logprobs) scored those low
    wrong = [n for n in roots_children if "= 3" in n.text]
    right = [n for n in roots_children if "= 2" in n.text]
    assert wrong and right and max(n.step_score for n in wrong) < min(n.step_score for n in right)
    assert all(n.text.startswith("Step") and "\n\n" not in n.text for n in trace.nodes if n.depth == 1)
    # chat completions continued the partial solution (no local template for a stub model)
    cont = [b for p, b in Stub.requests if p == "/v1/chat/completions" and b.get("continue_final_message")]
    assert cont and all(b["messages"][-1]["role"] == "assistant" for b in cont)
    assert len({b["seed"] for p, b in Stub.requests if p == "/v1/chat/completions" and not b.get("logprobs")
                and not b.get("continue_final_message")}) == 4  # one seed per row: four distinct samples
    pol = trace.compute["policy"]
    assert pol.generated_tokens > 0 and pol.reused_tokens > 0 and pol.prompt_tokens == 15 * pol.generated_tokens // 7


def test_finish_words_tell_a_stop_string_from_eos(server):
    b = OpenAIBackend(MODEL, server)
    gens = b.generate([ChatPrompt([{"role": "user", "content": "q"}], ""),
                       ChatPrompt([{"role": "user", "content": "q"}], "a\n\nb\n\n")], 50, stop=["\n\n"])
    assert [(g.text, g.finish_reason) for g in gens] == [("Step 1: 1 + 1 = 2", "stop"),
                                                         ("Therefore, the final answer is: $\\boxed{3}$.", "eos")]
    # llama-server: no stop string in the text, "stop" for both; its __verbose.stop_type decides
    b.kind = "llama.cpp"
    assert b._finish("x", 3, {"finish_reason": "stop"}, ["\n\n"], {"__verbose": {"stop_type": "word"}})[2] == "stop"
    assert b._finish("x", 3, {"finish_reason": "stop"}, ["\n\n"], {"__verbose": {"stop_type": "eos"}})[2] == "eos"
    assert b._finish("x", 3, {"finish_reason": "length"}, ["\n\n"], {})[2] == "length"


def test_top_logprobs_give_p_yes():
    assert p_yes_from_top({"Yes": -0.1, "No": -2.4}) == pytest.approx(1 / (1 + pow(2.718281828, -2.3)), rel=1e-4)
    assert p_yes_from_top({"Yes": -1.0, " yes": -1.0, "No": -1.0}) == pytest.approx(2 / 3, rel=1e-4)
    assert p_yes_from_top({"Yes": -0.5, "Maybe": -4.0}) > 0.97  # "No" below the listed floor
    assert p_yes_from_top({"A": -0.1, "B": -1.0}) == 0.5


def test_failures_each_have_a_message(server):
    with pytest.raises(ServerError, match=r"not reachable \(connection refused\)"):
        OpenAIBackend(MODEL, "http://127.0.0.1:9", retries=0)
    with pytest.raises(ServerError, match="does not serve 'other'; it serves: stub-policy"):
        OpenAIBackend("other", server)
    b = OpenAIBackend(MODEL, server)
    Stub.mode = "no_logprobs"
    with pytest.raises(ServerError, match="returned no logprobs"):
        b.next_token_top_logprobs(["Is it right?"])
    Stub.mode = "bad_shape"
    with pytest.raises(ServerError, match="unexpected shape"):
        b.generate(["p"], 10)
    Stub.mode = "slow"
    with pytest.raises(ServerError, match=r"did not answer /v1/completions within 0.1 s \(tried 2 times\)"):
        OpenAIBackend(MODEL, server, timeout=0.1, retries=1).generate(["p"], 10)
    Stub.mode = "ok"
    assert list_models(server + "/v1") == [MODEL]
    with pytest.raises(ServerError, match="http:// or https://"):
        list_models("file:///etc/passwd")
    cfg = RunConfig(question="q", policy=f"openai:{MODEL}@{server}", verifier="probe", strategy="best-of-n",
                    search=SearchConfig(n=2, width=1))
    with pytest.raises(ValueError, match="hidden states, which a model server does not send"):
        make_verifier("probe", ModelPool(), OpenAIBackend(MODEL, server))
    assert cfg  # the run config itself is valid; the verifier refuses


def test_a_missing_server_fails_the_run_with_its_message():
    cfg = RunConfig(question="q", policy="openai:m@http://127.0.0.1:9", verifier="none", strategy="majority",
                    search=SearchConfig(n=2, width=1))
    trace = run_search(cfg, pool=ModelPool())
    assert trace.status == "error" and "not reachable" in trace.error


def test_cancel_stops_sending_and_keeps_the_tree(server):
    Stub.mode = "slow"  # 0.3 s a request
    b = OpenAIBackend(MODEL, server, concurrency=2)
    cancel = threading.Event()
    threading.Timer(0.4, cancel.set).start()
    with pytest.raises(Cancelled):
        b.generate([f"p{i}" for i in range(16)], 10, cancel=cancel)
    sent = len(Stub.requests)
    assert sent < 16  # it stopped sending: 16 rows at 2 in flight were not all sent
    time.sleep(0.8)
    assert len(Stub.requests) <= sent + 2  # at most the pair already in flight arrives after
    # a run cancelled after its first round keeps that round's tree
    cancel2 = threading.Event()
    cfg = RunConfig(question="Add one, twice.", gold="3", policy=f"openai:{MODEL}@{server}", verifier="self-judge",
                    strategy="beam", search=SearchConfig(n=4, width=2, max_rounds=4, seed=0))
    trace = run_search(cfg, pool=ModelPool(), cancel=cancel2,
                       on_progress=lambda t: cancel2.set() if t.rounds >= 1 else None)
    assert trace.status == CANCELLED
    assert len(trace.children(0)) == 4 and not any(n.answer for n in trace.nodes)  # round 1 kept, no finish


def test_served_prms_read_the_documented_pooling_shapes(server):
    qwen = ServedPRM("Qwen/Qwen2.5-Math-PRM-7B", server)
    assert qwen.score("q", [["1 + 1 = 2", "2 + 1 = 5"], ["x = 3"]]) == [[0.8, 0.1], [0.8]]
    sent = sorted(b["messages"][-1]["content"] for p, b in Stub.requests if p == "/pooling")  # sent concurrently
    assert sent == ["1 + 1 = 2<extra_0>2 + 1 = 5<extra_0>", "x = 3<extra_0>"]
    shep = ServedPRM("peiyi9979/math-shepherd-mistral-7b-prm", server)
    assert shep.score("q", [["a", "b", "c"]]) == [[0.7, 0.7, 0.7]]
    assert [b for p, b in Stub.requests if p == "/pooling"][-1]["input"] == "q a ки\nb ки\nc ки"
    Stub.mode = "pool_all_tokens"
    with pytest.raises(ServerError, match="STEP pooling"):
        qwen.score("q", [["a"]])
    Stub.mode = "no_pooling"
    with pytest.raises(ServerError, match="no /pooling endpoint"):
        qwen.score("q", [["a"]])
    with pytest.raises(ValueError, match="only Qwen2.5-Math-PRM and Math-Shepherd"):
        check_verifier_name(f"openai:some-rm@{server}")
    check_verifier_name(f"openai:Qwen/Qwen2.5-Math-PRM-7B@{server}")


def test_the_app_talks_only_to_allowed_servers(server, monkeypatch):
    """A hosted app's page must not make it send requests anywhere: loopback only by default,
    the operator's list where one is set, and a typed openai:...@URL policy is checked the same way."""
    import app
    from tts_viz.runner import RunError
    from tts_viz.ui.servers import check_server_url

    monkeypatch.delenv("TTS_VIZ_SERVERS", raising=False)
    monkeypatch.delenv("SPACE_ID", raising=False)
    assert check_server_url(server + "/v1/") == server
    for bad in ("http://169.254.169.254/latest", "file:///etc/passwd", "gopher://127.0.0.1:70", "127.0.0.1:8080"):
        with pytest.raises(ValueError):
            check_server_url(bad)
    with pytest.raises(RunError, match="only to a model server on this machine"):
        app.checked_policy("openai:m@http://10.0.0.5:8000")
    update, msg = app.check_model_server(server)
    assert update["value"] == f"openai:{MODEL}@{server}" and f"openai:{MODEL}@{server}" in update["choices"]
    assert "serves: stub-policy" in msg
    monkeypatch.setenv("SPACE_ID", "user/space")
    _, msg = app.check_model_server(server)
    assert "tts-error" in msg and "TTS_VIZ_SERVERS" in msg
    monkeypatch.setenv("TTS_VIZ_SERVERS", f"http://gpu-box:8000,{server}")
    assert app.checked_policy(f"openai:{MODEL}@{server}") == f"openai:{MODEL}@{server}"
    with pytest.raises(RunError, match="listed: http://gpu-box:8000"):
        app.checked_policy("openai:m@http://127.0.0.1:1")
    _, msg = app.check_model_server("http://127.0.0.1:9<script>")
    assert "<script>" not in msg


def test_sampled_token_logprobs_are_read_from_both_response_shapes():
    """DeepConf reads each generated token's log-probability: vLLM's completions shape and llama-server's
    chat-like shape give the same list; no logprobs gives None (the strategy then has nothing to filter on)."""
    from tts_viz.backends.openai_backend import OpenAIBackend, _token_logprobs

    assert _token_logprobs({"tokens": ["a", "b"], "token_logprobs": [-0.1, -2.0], "top_logprobs": None}) == [-0.1, -2.0]
    assert _token_logprobs({"content": [{"token": "a", "logprob": -0.1}, {"token": "b", "logprob": -2.0}]}) == [-0.1, -2.0]
    assert _token_logprobs(None) is None and _token_logprobs({"other": 1}) is None
    assert OpenAIBackend.can_stop_rows is False  # a server answers whole: no mid-way abandoning
