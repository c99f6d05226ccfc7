"""Model-free logic: the arithmetic checker, aggregation, the prefix KV store, the sampler."""

from __future__ import annotations

import pytest

from tts_viz.verifiers import ArithVerifier, aggregate
import torch

from tts_viz.backends.prefix_cache import PrefixKVStore


def test_arith_scores_the_solution_so_far():
    steps = ["She has 16 - 3 = 13 eggs.", "Then she thinks.", "She sells 13 * 2 = 27 dollars.", "\\boxed{27}"]
    assert ArithVerifier().score("q", [steps]) == [[1.0, 1.0, 0.0, 0.0]]  # a wrong equation sticks
    assert ArithVerifier().score("q", [["No numbers here.", "7 + 5 = 12"]]) == [[0.5, 1.0]]


@pytest.mark.parametrize("how,expected", [("last", 0.9), ("min", 0.2), ("prod", 0.2 * 0.9)])
def test_aggregation(how, expected):
    assert aggregate([0.2, None, 0.9], how) == pytest.approx(expected)


def test_aggregation_rejects_unknown_rule():
    with pytest.raises(ValueError, match="Unknown aggregation"):
        aggregate([0.5], "mean")


def _kv(n: int, fill: float = 0.0):
    return [(torch.full((2, n, 4), fill), torch.full((2, n, 4), fill))]  # one layer, 2 heads, dim 4


def test_prefix_store_finds_the_longest_shared_token_prefix():
    store = PrefixKVStore()
    store.put([1, 2, 3, 4], _kv(4, 1.0))
    store.put([1, 2, 9], _kv(3, 2.0))
    n, kv = store.match([1, 2, 3, 4, 5, 6])
    assert n == 4 and kv[0][0][0, 0, 0] == 1.0
    n, kv = store.match([1, 2, 9, 9])
    assert n == 3 and kv[0][0][0, 0, 0] == 2.0
    assert store.match([1, 2, 3, 4], limit=3)[0] == 3  # keeps a token to run
    assert store.match([7, 1, 2]) == (0, None)


def test_prefix_store_drops_covered_entries_and_evicts_least_recently_used():
    store = PrefixKVStore()
    store.put([1, 2], _kv(2))
    store.put([1, 2, 3], _kv(3))  # extends [1, 2]: the shorter entry goes
    assert len(store) == 1
    store.put([1, 2], _kv(2))  # covered by [1, 2, 3]: not stored again
    assert len(store) == 1
    one = 2 * 2 * 3 * 4 * 4  # bytes of a 3-token entry (k and v, 2 heads, dim 4, float32)
    small = PrefixKVStore(max_bytes=2 * one)
    small.put([1, 1, 1], _kv(3))
    small.put([2, 2, 2], _kv(3))
    small.match([1, 1, 1, 5])  # touch: [2, 2, 2] is now the least recently used
    small.put([3, 3, 3], _kv(3))
    assert small.match([2, 2, 2])[0] == 0 and small.match([1, 1, 1])[0] == 3 and small.match([3, 3, 3])[0] == 3


def test_sampler_draws_from_the_tempered_distribution():
    from tts_viz.backends.transformers_backend import sample_tokens

    torch.manual_seed(0)
    logits = torch.tensor([[2.0, 1.0, 0.0, -1.0]]).repeat(20000, 1)
    freq = torch.bincount(sample_tokens(logits, 0.8), minlength=4).float() / 20000
    assert torch.allclose(freq, torch.softmax(logits[0] / 0.8, -1), atol=0.01)
    # nucleus 0.7: the two most likely tokens (0.64 + 0.24) are kept, renormalised
    freq = torch.bincount(sample_tokens(logits, 1.0, top_p=0.7), minlength=4).float() / 20000
    assert freq[2] == freq[3] == 0 and abs(freq[0] - 0.6439 / (0.6439 + 0.2369)) < 0.01
    assert sample_tokens(logits[:2], 0.0).tolist() == [0, 0]  # temperature 0 is argmax


class _ConstVerifier:
    name = "const"

    def __init__(self):
        from tts_viz.trace import ModelCompute

        self.compute = ModelCompute(params=0)

    def score(self, question, solutions):
        return [[0.8] * len(s) for s in solutions]

    def score_last(self, question, solutions):
        return [0.8 for _ in solutions]


def test_arith_veto_zeroes_inner_scores_from_the_first_wrong_equation():
    from tts_viz.verifiers.arith_veto import ArithVetoVerifier

    v = ArithVetoVerifier(_ConstVerifier())
    steps = ["She has 16 - 3 = 13 eggs.", "Then she thinks.", "She sells 13 * 2 = 27 dollars.", "\\boxed{27}"]
    assert v.name == "arith+const"
    assert v.score("q", [steps, ["No numbers."]]) == [[0.8, 0.8, 0.0, 0.0], [0.8]]
    assert v.score_last("q", [steps[:2], steps[:3]]) == [0.8, 0.0]
    from tts_viz.trace import ModelCompute

    per_run = ModelCompute(params=7)
    v.compute = per_run  # what the runner does: the inner verifier must count into it
    assert v.inner.compute is per_run and v.compute is per_run


def _tiny_loaded(name: str):
    """A LoadedModel with a 2-layer random Llama and a word-level tokenizer that has Yes / No."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    from tts_viz.models import LoadedModel

    tk = Tokenizer(models.WordLevel({"[UNK]": 0, "Yes": 1, "No": 2, "</s>": 3}, unk_token="[UNK]"))
    tk.pre_tokenizer = pre_tokenizers.Whitespace()
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, eos_token="</s>", unk_token="[UNK]")
    cfg = LlamaConfig(vocab_size=4, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                      num_attention_heads=2, num_key_value_heads=1)
    return LoadedModel(name=name, model=LlamaForCausalLM(cfg).eval(), tokenizer=tok, params=1,
                       device="cpu", load_seconds=0.0, source="test")


def test_make_verifier_reads_the_judge_model_from_the_name():
    """'self-judge@M' (the prm-eval form) judges with model M, not with the policy; arith+ wraps it."""
    from tts_viz.backends.transformers_backend import TransformersBackend
    from tts_viz.verifiers import make_verifier
    from tts_viz.verifiers.arith_veto import ArithVetoVerifier

    class Pool:
        def __init__(self):
            self.asked = []

        def get(self, name, quant=None):
            self.asked.append(name)
            return _tiny_loaded(name)

    pool = Pool()
    policy = TransformersBackend.from_loaded(_tiny_loaded("policy-0.5b"))
    assert make_verifier("self-judge", pool, policy).backend is policy and pool.asked == []
    judged = make_verifier("self-judge@judge-1.5b", pool, policy)
    assert judged.backend.name == "judge-1.5b" and pool.asked == ["judge-1.5b"]
    vetoed = make_verifier("arith+self-judge@judge-1.5b", pool, policy)
    assert isinstance(vetoed, ArithVetoVerifier) and vetoed.inner.backend.name == "judge-1.5b"
