"""Audio in: files read block by block, resampled to 16 kHz mono float32.

Any sample rate and channel count, 8/16/24/32-bit integer and float files
(whatever libsndfile reads: WAV, FLAC, OGG, MP3, ...). Non-finite samples are
zeroed with a warning. A long file is never loaded whole.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterator

import numpy as np
import soundfile as sf
import soxr

SAMPLE_RATE = 16000
log = logging.getLogger(__name__)


class AudioError(ValueError):
    """Audio that cannot be used, with a message fit for the user."""


def to_mono_16k(audio, sample_rate: int) -> np.ndarray:
    """Array (N,) or (N, channels), any rate -> float32 mono at 16 kHz."""
    x = np.asarray(audio)
    if x.dtype.kind in "iu":
        info = np.iinfo(x.dtype)
        x = (x.astype(np.float32) - (info.max + info.min + 1) / 2) / (info.max + 1 - (info.max + info.min + 1) / 2)
    x = x.astype(np.float32, copy=False)
    if x.ndim == 2:
        x = x.mean(axis=1, dtype=np.float32)
    elif x.ndim != 1:
        raise AudioError(f"audio must be 1-D or (samples, channels), got shape {x.shape}")
    if sample_rate <= 0:
        raise AudioError(f"sample rate must be positive, got {sample_rate}")
    x = _finite(x, "input")
    if sample_rate != SAMPLE_RATE and len(x):
        x = soxr.resample(x, sample_rate, SAMPLE_RATE, quality="HQ").astype(np.float32, copy=False)
    return x


def _finite(x: np.ndarray, where: str) -> np.ndarray:
    bad = ~np.isfinite(x)
    if bad.any():
        log.warning("%s: %d non-finite samples set to zero", where, int(bad.sum()))
        x = np.where(bad, np.float32(0), x)
    return x


def open_info(path: str | Path) -> sf._SoundFileInfo:
    path = Path(path)
    if not path.exists():
        raise AudioError(f"{path}: no such file")
    if path.is_dir():
        raise AudioError(f"{path}: is a directory")
    try:
        info = sf.info(str(path))
    except Exception as e:  # libsndfile's own message says what is wrong
        raise AudioError(f"{path}: cannot read audio ({_short(e)})") from None
    if info.frames == 0:
        raise AudioError(f"{path}: zero-length audio")
    return info


def _short(e: Exception) -> str:
    return str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__


def iter_blocks(path: str | Path, block_seconds: float = 10.0) -> Iterator[np.ndarray]:
    """Yield 16 kHz mono float32 blocks of a file, resampled as a stream."""
    info = open_info(path)
    rate = info.samplerate
    resampler = None if rate == SAMPLE_RATE else soxr.ResampleStream(rate, SAMPLE_RATE, 1, dtype="float32", quality="HQ")
    block = max(1, int(block_seconds * rate))
    got = 0
    try:
        with sf.SoundFile(str(path)) as f:
            while True:
                data = f.read(block, dtype="float32", always_2d=True)
                last = len(data) < block
                got += len(data)
                x = _finite(data.mean(axis=1, dtype=np.float32), str(path))
                if resampler is not None:
                    x = resampler.resample_chunk(x, last=last)
                if len(x):
                    yield x
                if last:
                    break
    except AudioError:
        raise
    except Exception as e:
        raise AudioError(f"{path}: cannot read audio ({_short(e)})") from None
    if got == 0:
        raise AudioError(f"{path}: zero-length audio")


def read_audio(path: str | Path) -> np.ndarray:
    """Whole file as 16 kHz mono float32 (for short files)."""
    return np.concatenate(list(iter_blocks(path)))
