"""Triton kernel: batched log-mel of many streams' frames, fused.

From the STFT (real and imaginary parts) of every frame of every stream in a
batch, one kernel computes the power spectrum, projects it on the mel filters
and takes log10 with its 1e-10 floor. The per-window "max - 8" clamp and the
final scaling stay in PyTorch: they need a reduction over the whole window.
Used automatically by `LogMel` on CUDA when Triton is installed; checked
against the PyTorch path on the CPU with TRITON_INTERPRET=1.
"""
from __future__ import annotations

import torch

try:
    import triton
    import triton.language as tl
except ImportError:  # Triton is optional: LogMel falls back to PyTorch
    triton = None


if triton is not None:

    @triton.jit
    def _log_mel_kernel(re_ptr, im_ptr, fb_ptr, out_ptr, M, K, N, stride_m, stride_fb, stride_out,
                        BLOCK_M: tl.constexpr, BLOCK_K: tl.constexpr, BLOCK_N: tl.constexpr):
        rows = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
        mels = tl.arange(0, BLOCK_N)
        acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
        for k0 in range(0, K, BLOCK_K):
            ks = k0 + tl.arange(0, BLOCK_K)
            m_a = (rows[:, None] < M) & (ks[None, :] < K)
            re = tl.load(re_ptr + rows[:, None] * stride_m + ks[None, :], mask=m_a, other=0.0)
            im = tl.load(im_ptr + rows[:, None] * stride_m + ks[None, :], mask=m_a, other=0.0)
            power = re * re + im * im
            m_b = (ks[:, None] < K) & (mels[None, :] < N)
            fb = tl.load(fb_ptr + mels[None, :] * stride_fb + ks[:, None], mask=m_b, other=0.0)
            acc += tl.dot(power, fb, input_precision="ieee")
        out = tl.log(tl.maximum(acc, 1e-10)) * 0.4342944819032518  # log10
        tl.store(out_ptr + rows[:, None] * stride_out + mels[None, :], out,
                 mask=(rows[:, None] < M) & (mels[None, :] < N))


def available() -> bool:
    return triton is not None


def log10_mel(spec: torch.Tensor, filters: torch.Tensor) -> torch.Tensor:
    """spec: complex STFT (B, F, T); filters (n_mels, F) -> log10 mel (B, n_mels, T)."""
    if triton is None:
        raise RuntimeError("Triton is not installed")
    B, F, T = spec.shape
    n_mels = filters.shape[0]
    frames = spec.transpose(1, 2).reshape(B * T, F)  # one row per frame
    re = frames.real.contiguous().float()
    im = frames.imag.contiguous().float()
    fb = filters.contiguous().float()
    out = torch.empty((B * T, n_mels), device=spec.device, dtype=torch.float32)
    M = B * T
    block_n = max(16, triton.next_power_of_2(n_mels))
    grid = (triton.cdiv(M, 32),)
    _log_mel_kernel[grid](re, im, fb, out, M, F, n_mels, re.stride(0), fb.stride(0), out.stride(0),
                          BLOCK_M=32, BLOCK_K=32, BLOCK_N=block_n)
    return out.reshape(B, T, n_mels).transpose(1, 2)
