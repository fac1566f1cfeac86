"""int8 weights for the decoder's per-token work on the CPU (torch's fbgemm ops).

A decoding step multiplies a few rows of activations (one per beam) by every
decoder weight and by the 51,864-token vocabulary: the CPU spends that step
reading weights, and int8 weights are a quarter of the bytes. Weights get one
scale per output row; activations are quantized on each call, 7-bit
(reduce_range), so CPUs without VNNI cannot saturate their int16 sums.
"""
from __future__ import annotations

import warnings

import torch
from torch import nn


def pack_int8(w: torch.Tensor, bias: torch.Tensor | None):
    """fbgemm's prepacked int8 weights; None where torch lacks the quantized ops."""
    w = w.detach().float().cpu()
    scale = (w.abs().amax(1) / 127).clamp_min(1e-8).double()
    try:
        with warnings.catch_warnings():  # torch marks quantized tensors deprecated; fp32 is the fallback
            warnings.simplefilter("ignore")
            q = torch.quantize_per_channel(w, scale, torch.zeros(len(w), dtype=torch.long), 0, torch.qint8)
            b = None if bias is None else bias.detach().float().cpu()
            return torch.ops.quantized.linear_prepack(q, b)
    except (RuntimeError, AttributeError, NotImplementedError):
        return None


def int8_linear(x: torch.Tensor, packed) -> torch.Tensor:
    flat = x.reshape(-1, x.shape[-1]).contiguous()
    return torch.ops.quantized.linear_dynamic(flat, packed, True).reshape(*x.shape[:-1], -1)


class Int8Linear(nn.Module):
    """A CPU stand-in for an nn.Linear, with the fp32 module kept for other inputs and tests."""

    def __init__(self, packed, fp32: nn.Linear):
        super().__init__()
        self.packed = packed
        self.fp32 = fp32

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type == "cpu" and x.dtype == torch.float32:
            return int8_linear(x, self.packed)
        return self.fp32(x)


def quantize_linears(module: nn.Module, names: tuple[str, ...]) -> None:
    """Swap the named nn.Linear submodules for Int8Linear (those torch can pack)."""
    for name in names:
        owner, _, attr = name.rpartition(".")
        parent = module.get_submodule(owner)
        lin = getattr(parent, attr)
        packed = pack_int8(lin.weight, lin.bias) if isinstance(lin, nn.Linear) else None
        if packed is not None:
            setattr(parent, attr, Int8Linear(packed, lin))
