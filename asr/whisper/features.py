"""Whisper log-mel features with ``torch.stft``.

n_fft 400, hop 160, 80 (or 128) Slaney mel bins, log10 clamped at max - 8 per
window, then (x + 4) / 4. The clamp is taken per window rather than over the
whole recording so that long files can be processed block by block.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from .. import kernels

SAMPLE_RATE = 16000
N_FFT = 400
HOP = 160
FRAMES_PER_SECOND = SAMPLE_RATE // HOP  # 100 mel frames a second


def _hz_to_mel(f: np.ndarray) -> np.ndarray:
    # Slaney: linear below 1 kHz, logarithmic above.
    f = np.asarray(f, dtype=np.float64)
    mel = f / (200.0 / 3)
    log_part = 15.0 + np.log(np.maximum(f, 1e-10) / 1000.0) / (math.log(6.4) / 27.0)
    return np.where(f >= 1000.0, log_part, mel)


def _mel_to_hz(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    lin = m * (200.0 / 3)
    log_part = 1000.0 * np.exp((math.log(6.4) / 27.0) * (m - 15.0))
    return np.where(m >= 15.0, log_part, lin)


def mel_filters(n_mels: int = 80, n_fft: int = N_FFT, sr: int = SAMPLE_RATE) -> torch.Tensor:
    """Slaney-style, area-normalised triangular filters, shape (n_mels, n_fft // 2 + 1)."""
    fft_freqs = np.linspace(0, sr / 2, n_fft // 2 + 1)
    edges = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(sr / 2), n_mels + 2))
    widths = np.diff(edges)
    ramps = edges[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (edges[2:] - edges[:-2]))[:, None]
    return torch.from_numpy(weights.astype(np.float32))


class LogMel:
    """Batched log-mel: audio (B, N) float32 at 16 kHz -> (B, n_mels, N // 160)."""

    def __init__(self, n_mels: int = 80, device: torch.device | str = "cpu"):
        self.n_mels = n_mels
        self.device = torch.device(device)
        self.filters = mel_filters(n_mels).to(self.device)
        self.window = torch.hann_window(N_FFT, device=self.device)

    def power(self, audio: torch.Tensor) -> torch.Tensor:
        spec = torch.stft(audio, N_FFT, HOP, window=self.window, return_complex=True)
        return spec[..., :-1].abs() ** 2

    def __call__(self, audio: torch.Tensor, use_triton: bool | None = None) -> torch.Tensor:
        if audio.dim() == 1:
            audio = audio[None]
        audio = audio.to(self.device, torch.float32)
        if use_triton is None:
            use_triton = self.device.type == "cuda" and kernels.available()
        if use_triton:  # power, mel projection and log fused in one kernel
            spec = torch.stft(audio, N_FFT, HOP, window=self.window, return_complex=True)[..., :-1]
            log_spec = kernels.log10_mel(spec, self.filters)
        else:
            log_spec = (self.filters @ self.power(audio)).clamp_min(1e-10).log10()
        peak = log_spec.amax(dim=(-2, -1), keepdim=True)
        log_spec = torch.maximum(log_spec, peak - 8.0)
        return (log_spec + 4.0) / 4.0
