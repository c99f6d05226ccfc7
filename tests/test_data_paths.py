"""The app's JSONL path box reads only allow-listed data folders, and says nothing about other files."""

from __future__ import annotations

import json

import pytest

from tts_viz.ui.data_paths import check_data_path


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    d = tmp_path / "data"
    d.mkdir()
    row = {"question": "What is 2 + 3?", "answer": "2 + 3 = 5\n#### 5"}
    (d / "mini.jsonl").write_text(json.dumps(row) + "\n")
    monkeypatch.setenv("TTS_VIZ_DATA_DIRS", str(d))
    return d


@pytest.mark.parametrize("path", ["/etc/passwd", "/etc/shadow", "/no/such/file.jsonl", "../../../etc/passwd",
                                  "{data}/../secret.jsonl", "{data}/mini.jsonl/../../../../etc/hostname"])
def test_paths_outside_the_data_folders_are_refused_alike(data_dir, path, tmp_path):
    (tmp_path / "secret.jsonl").write_text('{"question": "q", "gold": "1"}\n')  # exists, beside the folder
    with pytest.raises(ValueError) as e:
        check_data_path(path.format(data=data_dir))
    msg = str(e.value)
    assert "data folders (data)" in msg
    # the same words whether the file exists or not: no name, no contents, no "not found"
    assert "passwd" not in msg and "shadow" not in msg and "secret" not in msg and "root:" not in msg
    assert "not found" not in msg and "No such" not in msg


def test_a_symlink_out_of_the_folder_is_refused(data_dir):
    link = data_dir / "escape.jsonl"
    link.symlink_to("/etc/passwd")
    with pytest.raises(ValueError, match="data folders"):
        check_data_path(str(link))


def test_a_file_in_the_folder_opens_and_the_app_loads_it(data_dir, monkeypatch):
    assert check_data_path(str(data_dir / "mini.jsonl")) == (data_dir / "mini.jsonl").resolve()
    with pytest.raises(ValueError, match="No such data file.*other.jsonl"):
        check_data_path(str(data_dir / "other.jsonl"))
    monkeypatch.setenv("TTS_VIZ_PRELOAD", "0")
    import app

    q, gold, msg, problem = app.load_problem("GSM8K (JSONL path)", 0, 1, 0, str(data_dir / "mini.jsonl"), "any")
    assert q == "What is 2 + 3?" and gold == "5" and "Loaded" in msg
    _, _, msg, _ = app.load_problem("GSM8K (JSONL path)", 0, 1, 0, "/etc/passwd", "any")
    assert "data folders" in msg and "passwd" not in msg and "invalid JSON" not in msg


@pytest.mark.parametrize("field, value, words", [
    ("n", "abc", "Budget N must be a number"), ("n", 2.7, "Budget N must be a whole number"),
    ("n", float("nan"), "finite"), ("n", 10**12, "out of range"), ("n", 0, "between 1 and"),
    ("seed", None, "Seed must be a number"), ("verifier", None, "Pick a verifier"),
    ("strategy", ["beam"], "Pick a strategy"), ("question", {"x": 1}, "must be text"),
    ("quality", 0.2, "AUROC between 0.5"), ("knobs", ("x", 0.5, 1, 0.5), "Particle weight temperature must be a number"),
    ("knobs", (0.2, 1.5, 1, 0.5), "threshold .* between 0 and 1"), ("knobs", (0.2, 0.5, 1, "rollout", 0), "DeepConf"), ("knobs", (0.2, 0.5, 1, 3), "MCTS evaluation must be one of"),
])
def test_api_values_of_the_wrong_type_get_our_message(field, value, words, monkeypatch):
    """What a script calling the Space's API can send: every field checked, a RunError in words."""
    monkeypatch.setenv("TTS_VIZ_PRELOAD", "0")
    import app
    from tts_viz.runner import RunError

    kw = dict(question="What is 2 + 3?", gold="5", policy=None, verifier="oracle", strategy="beam", n=4, width=2,
              lookahead=1, rev_len=2, temperature=0.8, seed=0, aggregation="last", max_step_tokens=64,
              max_rounds=4, quality=0.9)
    kw[field] = value
    with pytest.raises(RunError, match=words):
        app.make_config(**kw)


def test_method_knobs_show_for_their_methods_and_reach_the_search(monkeypatch):
    monkeypatch.setenv("TTS_VIZ_PRELOAD", "0")
    import app

    shown = lambda *s: [u["visible"] for u in app.method_knobs(*s)]
    assert shown("beam", "beam", "best-of-n") == [False] * 6
    assert shown("mcts", "beam", "deepconf") == [False, False, True, True, True, False]  # Compare's count too
    assert shown("particle-gibbs", None, None) == [True, True, False, False, False, False]
    assert shown("early-stop-vote", None, None) == [False, False, False, False, False, True]
    cfg = app.make_config("What is 2 + 3?", "5", None, "arith", "mcts", 4, 2, 1, 2, 0.8, 0, "last", 64, 4,
                          knobs=(0.3, 0.4, 2.5, "prm", 0.7, 0.9))
    s = cfg.search
    assert (s.particle_temperature, s.ess_threshold, s.exploration, s.mcts_evaluation, s.confidence_keep,
            s.vote_confidence) == (0.3, 0.4, 2.5, "prm", 0.7, 0.9)
    from tts_viz.runner import RunError

    with pytest.raises(RunError, match="vote confidence must be above 0.5"):  # a tie would stop it
        app.make_config("What is 2 + 3?", "5", None, "arith", "early-stop-vote", 4, 2, 1, 2, 0.8, 0, "last", 64, 4,
                        knobs=(0.3, 0.4, 2.5, "rollout", 0.7, 0.5))
    with pytest.raises(RunError, match="MCTS evaluation must be one of rollout, prm"):  # an API caller's value
        app.make_config("What is 2 + 3?", "5", None, "arith", "mcts", 4, 2, 1, 2, 0.8, 0, "last", 64, 4,
                        knobs=(0.3, 0.4, 2.5, "<b>x</b>", 0.7, 0.9))
