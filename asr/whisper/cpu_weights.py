"""Smaller weights for the decoder's per-token work on the CPU.

A decoding step multiplies a few rows of activations (one per beam) by every
decoder weight and by the 51,864-token vocabulary: the CPU spends that step
reading weights. int8 weights (torch's fbgemm ops) are a quarter of the bytes:
one scale per output row; activations are quantized on each call, 7-bit
(reduce_range), so CPUs without VNNI cannot saturate their int16 sums. fp16
weights are half the bytes and keep Whisper's own GPU precision; torch's CPU
half matmul is slow on big inputs, so only small ones (decoding steps) use it.
"""
from __future__ import annotations

import time
import warnings
from functools import lru_cache
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F


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


HALF_MAX_ROWS = 4  # torch's CPU half matmul costs ~75 us per row (fp32 ~350 us flat): one window's beams only


class HalfLinear(nn.Module):
    """fp16 weights for few rows of fp32 activations on the CPU; the fp32 module for the rest."""

    def __init__(self, fp32: nn.Linear):
        super().__init__()
        self.fp32 = fp32
        self.weight = fp32.weight.detach().half()
        self.bias = None if fp32.bias is None else fp32.bias.detach().half()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type == "cpu" and x.dtype == torch.float32 and x[..., 0].numel() <= HALF_MAX_ROWS:
            return F.linear(x.half(), self.weight, self.bias).float()
        return self.fp32(x)


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


def _int8(lin: nn.Linear):
    packed = pack_int8(lin.weight, lin.bias)
    return None if packed is None else Int8Linear(packed, lin)


WEIGHTS = {"int8": _int8, "fp16": HalfLinear}
DECODER_PRECISIONS = ("auto", "fp32", "fp16", "int8")  # what load_model's `decoder` takes


def check_weights(weights: str) -> None:
    if weights not in DECODER_PRECISIONS:
        raise ValueError(f"decoder weights {weights!r}: expected {choices_text(DECODER_PRECISIONS)}")


def faster_step_weights(linears: list[nn.Linear], rows: int = 3, repeats: int = 9) -> str:
    """"fp16" or "fp32": which runs these linears (a decoding step's, in order) faster on this
    CPU for `rows` rows (one window's beams). It varies with the CPU: fp16 reads half the bytes
    and took 0.85x the decode time on one machine, fp32 about 0.7x the steps' time on another
    (README). fp16 must win by 15 % (the median of `repeats` rounds) so that timing noise rarely
    flips the choice. Timed once per process and shape: every model loaded after agrees."""
    key = (rows, tuple(tuple(lin.weight.shape) for lin in linears))
    if key not in _STEP_CHOICE:
        _STEP_CHOICE[key] = _time_step_weights(linears, rows, repeats)
    return _STEP_CHOICE[key]


_STEP_CHOICE: dict[tuple, str] = {}


def _time_step_weights(linears: list[nn.Linear], rows: int, repeats: int) -> str:
    xs = [torch.randn(rows, lin.in_features) for lin in linears]
    half = [HalfLinear(lin) for lin in linears]

    def one_step(mods) -> float:
        t = time.perf_counter()
        for m, x in zip(mods, xs):
            m(x)
        return time.perf_counter() - t

    with torch.inference_mode():
        times = {"fp32": [], "fp16": []}
        for _ in range(repeats):  # interleaved: a slow spell hits both
            times["fp32"].append(one_step(linears))
            times["fp16"].append(one_step(half))
    med = {k: sorted(v)[len(v) // 2] for k, v in times.items()}
    return "fp16" if med["fp16"] * 1.15 < med["fp32"] else "fp32"


@lru_cache(maxsize=1)
def native_bf16() -> bool:
    """Whether this CPU multiplies bf16 in hardware (AMX or AVX512-BF16): there the encoder's
    matrix products take about half the fp32 time in bf16; elsewhere bf16 is emulated and slow."""
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def choices_text(names: tuple[str, ...]) -> str:
    return ", ".join(names[:-1]) + " or " + names[-1]


def swap_linears(module: nn.Module, names: tuple[str, ...], weights: str) -> None:
    """Swap the named nn.Linear submodules for ``weights`` ("int8", "fp16"; "fp32" keeps them)."""
    check_weights(weights)
    if weights == "auto":
        raise ValueError("resolve 'auto' first (faster_step_weights)")
    if weights == "fp32":
        return
    for name in names:
        owner, _, attr = name.rpartition(".")
        parent = module.get_submodule(owner)
        lin = getattr(parent, attr)
        small = WEIGHTS[weights](lin) if isinstance(lin, nn.Linear) else None
        if small is not None:
            setattr(parent, attr, small)
