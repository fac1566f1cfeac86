"""Encode a batch of audio windows: cut to the longest plus trailing silence."""
from __future__ import annotations

import math

import numpy as np
import torch

from .features import HOP, SAMPLE_RATE, LogMel
from .load import LoadedModel

WINDOW = 30 * SAMPLE_RATE  # the longest window the encoder takes
FRAME_SAMPLES = 2 * HOP  # samples per encoder frame


def encode_windows(lm: LoadedModel, mel: LogMel, audios: list[np.ndarray], pad_seconds: float,
                   full: bool = False, stop=None) -> torch.Tensor:
    """Encoder states (B, T, d) of the windows, zero-padded to the longest plus
    ``pad_seconds`` of silence (or to 30 s with ``full``). ``stop``: see Encoder.forward."""
    longest = max(len(a) for a in audios)
    n = WINDOW if full else min(WINDOW, longest + int(pad_seconds * SAMPLE_RATE))
    n = math.ceil(n / FRAME_SAMPLES) * FRAME_SAMPLES
    x = np.zeros((len(audios), n), np.float32)
    for i, a in enumerate(audios):
        x[i, : min(len(a), n)] = a[:n]
    dtype = next(lm.model.parameters()).dtype
    with torch.inference_mode():
        return lm.model.encoder(mel(torch.from_numpy(x).to(lm.device)).to(dtype), stop)


def encoder_frames(samples: int) -> int:
    """Encoder frames that hold real audio in a window of this many samples."""
    return math.ceil(samples / FRAME_SAMPLES)
