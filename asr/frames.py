"""30 ms frames: audio arriving in blocks of any size becomes exact frames.

A `Framer` belongs to one stream. It resamples to 16 kHz when the source runs
at another rate, carries the remainder between blocks, and at the end of the
stream pads the last partial frame with zeros so that nothing is lost.
Time is the audio clock: frame ``i`` starts at ``i * 0.03`` s.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import soxr

SAMPLE_RATE = 16000
FRAME_SAMPLES = 480
FRAME_SECONDS = FRAME_SAMPLES / SAMPLE_RATE


@dataclass(frozen=True, eq=False)
class Frame:
    stream: str
    index: int
    samples: np.ndarray  # float32, FRAME_SAMPLES long
    last: bool = False  # the stream ends with this frame

    @property
    def start(self) -> float:
        return self.index * FRAME_SECONDS

    @property
    def end(self) -> float:
        return (self.index + 1) * FRAME_SECONDS


class Framer:
    def __init__(self, stream: str, sample_rate: int = SAMPLE_RATE):
        if sample_rate <= 0:
            raise ValueError(f"sample rate must be positive, got {sample_rate}")
        self.stream = stream
        self._resampler = None if sample_rate == SAMPLE_RATE else soxr.ResampleStream(
            sample_rate, SAMPLE_RATE, 1, dtype="float32", quality="HQ")
        self._rest = np.zeros(0, np.float32)
        self._next = 0
        self._closed = False

    @property
    def frames_out(self) -> int:
        return self._next

    def push(self, block) -> list[Frame]:
        """Add a block (any length, mono) and return the whole frames now complete."""
        if self._closed:
            raise RuntimeError(f"stream {self.stream!r} is already closed")
        x = np.asarray(block, dtype=np.float32).reshape(-1)
        if self._resampler is not None:
            x = self._resampler.resample_chunk(x, last=False)
        return self._cut(np.concatenate([self._rest, x]) if len(self._rest) else x, last=False)

    def close(self) -> list[Frame]:
        """End of stream: the remainder, zero-padded, becomes the last frame."""
        if self._closed:
            return []
        self._closed = True
        x = self._rest
        if self._resampler is not None:
            x = np.concatenate([x, self._resampler.resample_chunk(np.zeros(0, np.float32), last=True)])
        if len(x) % FRAME_SAMPLES:
            x = np.concatenate([x, np.zeros(FRAME_SAMPLES - len(x) % FRAME_SAMPLES, np.float32)])
        frames = self._cut(x, last=True)
        if not frames:  # nothing left over: an empty frame still marks the end
            frames = [Frame(self.stream, self._next, np.zeros(FRAME_SAMPLES, np.float32), last=True)]
            self._next += 1
        return frames

    def _cut(self, x: np.ndarray, last: bool) -> list[Frame]:
        n = len(x) // FRAME_SAMPLES
        frames = []
        for i in range(n):
            chunk = x[i * FRAME_SAMPLES:(i + 1) * FRAME_SAMPLES].copy()
            frames.append(Frame(self.stream, self._next, chunk, last=last and i == n - 1))
            self._next += 1
        self._rest = x[n * FRAME_SAMPLES:].copy()
        return frames
