"""Per-stream pause tracker: speech or not per 30 ms frame, and the running pause.

Speech probability comes from Silero VAD (the ``silero-vad`` package's JIT
model, which wants 512-sample windows at 16 kHz, so frames are re-buffered),
or from an energy detector when Silero is not installed or not wanted.
Hysteresis (a higher threshold to start speech than to end it, and a minimum
run of speech frames) keeps single noisy frames from flipping the state.
"""
from __future__ import annotations

import importlib.util
import io
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from .frames import Frame

SILERO_WINDOW = 512


@dataclass(frozen=True)
class PauseConfig:
    vad: str = "silero"  # "silero" or "energy"
    # Silero on one torch thread: a 512-sample window gains nothing from two, and the idle
    # thread's spin-wait slows whatever shares the cores (the voice, in the microphone loop)
    single_thread: bool = False
    onset: float = 0.5  # probability that starts speech
    offset: float = 0.35  # probability under which speech ends
    min_speech_frames: int = 3  # 90 ms of speech before a speech run counts
    energy_margin_db: float = 15.0  # energy detector: this far over the noise floor is speech


@dataclass(frozen=True)
class PauseState:
    index: int  # frame index
    prob: float
    speech: bool
    pause_ms: float  # since the last speech ended; 0 during speech and before any
    speech_start: float | None  # start of the current or last speech run (s)
    speech_end: float | None  # end of the last speech run (s), None while speaking


@lru_cache(maxsize=1)
def _silero_bytes() -> bytes:
    # Read the model file without importing silero_vad: its __init__ sets torch to one thread.
    spec = importlib.util.find_spec("silero_vad")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("silero-vad is not installed: pip install silero-vad")
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / "silero_vad.jit"
    return path.read_bytes()


class SileroVad:
    """One stream's Silero model (it carries recurrent state between windows)."""

    def __init__(self, single_thread: bool = False):
        self.model = torch.jit.load(io.BytesIO(_silero_bytes()), map_location="cpu").eval()
        self.model.reset_states()
        self.single_thread = single_thread

    def reset(self) -> None:
        self.model.reset_states()

    @torch.inference_mode()
    def __call__(self, window: np.ndarray) -> float:
        n = torch.get_num_threads() if self.single_thread else 1
        if n != 1:
            torch.set_num_threads(1)  # this thread's setting only; ~0.7 ms for the pair
        try:
            return float(self.model(torch.from_numpy(window)[None], 16000))
        finally:
            if n != 1:
                torch.set_num_threads(n)


class EnergyVad:
    """Speech when a window is well above a tracked noise floor."""

    def __init__(self, margin_db: float = 15.0):
        self.margin = margin_db
        self.floor: float | None = None

    def __call__(self, window: np.ndarray) -> float:
        db = 10 * math.log10(float(np.mean(window.astype(np.float64) ** 2)) + 1e-10)
        if self.floor is None:
            self.floor = min(db, -60.0)
        # the floor falls fast and rises slowly, so speech does not lift it
        self.floor = db if db < self.floor else self.floor + 0.02 * (db - self.floor)
        return 1.0 / (1.0 + math.exp(-(db - self.floor - self.margin) / 3.0))

    def reset(self) -> None:
        pass  # the noise floor is the room's, not the speech's: it stays


def make_vad(config: PauseConfig):
    if config.vad == "silero":
        return SileroVad(config.single_thread)
    if config.vad == "energy":
        return EnergyVad(config.energy_margin_db)
    raise ValueError(f"unknown vad {config.vad!r}; choose silero or energy")


class PauseTracker:
    def __init__(self, config: PauseConfig = PauseConfig(), vad=None):
        self.config = config
        self.vad = vad or make_vad(config)
        self.reset()

    def reset(self) -> None:
        """Forget the audio heard so far (the VAD's recurrent state too); the model stays loaded."""
        if hasattr(self.vad, "reset"):
            self.vad.reset()
        self._buf = np.zeros(0, np.float32)
        self._prob = 0.0
        self._speech = False
        self._run = 0  # frames in the current run over onset (while not speaking)
        self._start: float | None = None
        self._end: float | None = None
        self._run_start = 0.0

    def update(self, frame: Frame) -> PauseState:
        self._buf = np.concatenate([self._buf, frame.samples])
        while len(self._buf) >= SILERO_WINDOW:
            self._prob = self.vad(self._buf[:SILERO_WINDOW])
            self._buf = self._buf[SILERO_WINDOW:]
        c = self.config
        if self._speech:
            if self._prob < c.offset:
                self._speech = False
                self._end = frame.start
        else:
            if self._prob >= c.onset:
                if self._run == 0:
                    self._run_start = frame.start
                self._run += 1
                if self._run >= c.min_speech_frames:
                    self._speech = True
                    self._start = self._run_start
                    self._end = None
            else:
                self._run = 0
        pause = 0.0 if self._speech or self._end is None else (frame.end - self._end) * 1000
        return PauseState(frame.index, self._prob, self._speech, pause, self._start, self._end)
