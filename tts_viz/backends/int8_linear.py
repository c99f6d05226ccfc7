"""Weight-only int8 Linear layers for CPUs without fast bf16 (e.g. AVX2-only EPYC VMs).

Why: decoding is memory-bound. On the 2-core VMs here memory bandwidth is ~3.5 GB/s, so the
fp32 0.5B policy (2 GB of weights) cannot decode faster than ~1.7 steps/s whatever the batch.
Storing weights as int8 with one scale per output channel reads 4x fewer bytes; the kernel
(torch._weight_int8pack_mm) takes bf16 activations, so accuracy is that of a bf16 run (the
weights come from a Q4 GGUF, so per-channel int8 of them loses almost nothing).
Large inputs (prefill) are compute-bound: there the weights are dequantised for an fp32 GEMM.

The kernel's AVX-512 path (CPUs with native bf16) reads its weight and input with aligned
loads and segfaults on a pointer that is not 64-byte aligned. Tensors torch allocates are
aligned, but a safetensors file maps every tensor at its offset in the file (the int8 warm
cache), and a row slice of activations starts mid-buffer: both are copied to aligned memory.
"""

from __future__ import annotations

import torch
from torch import nn

# Rows above which prefill-style inputs use a dequantised fp32 GEMM (the int8 kernel has no
# advantage once the matmul is compute-bound; measured on par at 32 rows).
DEQUANT_ROWS = 48
# Alignment _weight_int8pack_mm needs for its weight and input (one cache line, AVX-512).
KERNEL_ALIGN_BYTES = 64


def aligned(t: torch.Tensor) -> torch.Tensor:
    """t itself when contiguous and 64-byte aligned, else an aligned contiguous copy."""
    if t.is_contiguous() and t.data_ptr() % KERNEL_ALIGN_BYTES == 0:
        return t
    return t.clone(memory_format=torch.contiguous_format)


class Int8WeightLinear(nn.Module):
    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        w = linear.weight.detach().float()
        scale = w.abs().amax(dim=1).clamp(min=1e-12) / 127.0
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.register_buffer("weight_int8", torch.round(w / scale[:, None]).clamp(-127, 127).to(torch.int8))
        self.register_buffer("scale", scale.to(torch.bfloat16))
        self.register_buffer("scale_f32", scale)
        self.bias = None if linear.bias is None else nn.Parameter(linear.bias.detach().float(), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        flat = x.reshape(-1, shape[-1])
        if flat.shape[0] > DEQUANT_ROWS:
            w = self.weight_int8.to(torch.float32) * self.scale_f32[:, None]
            y = torch.nn.functional.linear(flat.float(), w)
        else:
            y = torch._weight_int8pack_mm(aligned(flat.to(torch.bfloat16)), self.weight_int8, self.scale).float()
        if self.bias is not None:
            y = y + self.bias
        return y.to(x.dtype).reshape(*shape[:-1], self.out_features)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        # load_state_dict(assign=True) adopts the loaded tensors, which may sit unaligned in a
        # mapped file; the kernel would crash on them (see the module docstring).
        if not self.weight_int8.is_meta:  # a key missing from the file stays meta; the loader reports it
            self.weight_int8 = aligned(self.weight_int8)
            self.scale = aligned(self.scale)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, int8 weights"


def quantize_linears_int8(model: nn.Module) -> int:
    """Replace every nn.Linear in the model with Int8WeightLinear, in place. Returns the count."""
    targets = [(name, m) for name, m in model.named_modules() if isinstance(m, nn.Linear)]
    for name, lin in targets:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, Int8WeightLinear(lin))
    return len(targets)


def int8_kernel_available() -> bool:
    try:
        w = torch.zeros(4, 8, dtype=torch.int8)
        torch._weight_int8pack_mm(torch.zeros(1, 8, dtype=torch.bfloat16), w, torch.ones(4, dtype=torch.bfloat16))
        return True
    except (RuntimeError, AttributeError):
        return False
