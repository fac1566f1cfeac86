"""Barge-in: is the user talking over the reply?

Silero VAD over the raw microphone, with an echo guard: the speaker's own sound comes back into
the microphone, so a frame only counts as the user when the microphone is louder than the echo
the played signal explains. The speaker's level for a frame is the loudest 30 ms it played over
a span that covers the echo delay, so echo alone never sits above the echo path's gain; that
gain is estimated as a high percentile of the microphone-to-speaker level ratio over the last
few seconds of playback (a user who has just started talking is too few frames to move it).
Until a few frames of playback have been seen there is no estimate, and nothing interrupts.
The VAD hears the microphone only during replies, so each reply starts it afresh: the state
the user's last words left would call the next reply's first frame speech and stop it at once.
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from asr.frames import Frame
from asr.pause import PauseConfig, PauseTracker


@dataclass(frozen=True)
class BargeInConfig:
    prob: float = 0.5  # VAD probability that counts as speech
    ms: float = 30.0  # this much speech over the echo interrupts (whole 30 ms frames)
    margin_db: float = 6.0  # the microphone must be this far above the echo estimate
    percentile: float = 80.0
    delay_s: float = 0.15  # the longest echo delay the guard allows for
    history: int = 100  # frames of playback the estimate looks back over (3 s)
    min_frames: int = 5  # frames of playback before the estimate counts


class BargeIn:
    def __init__(self, config: BargeInConfig = BargeInConfig(), vad: str = "silero"):
        self.config = config
        self._vad = PauseTracker(PauseConfig(vad=vad, single_thread=True))  # for its per-frame probability
        self.run = 0  # ms of audio in a row that count as the user
        self._ratios: deque[float] = deque(maxlen=config.history)  # microphone minus speaker level, dB
        # the VAD heard echo and has not yet called a frame silence: its "speech" may be the echo
        # (Silero holds on for 100 ms and more after speech stops, past the reply's pauses)
        self._echo_in_vad = False

    def reset(self) -> None:
        """A new reply: start counting and the VAD afresh (the echo path's estimate stays)."""
        self.run = 0
        self._vad.reset()
        self._echo_in_vad = False

    @property
    def coupling_db(self) -> float | None:
        """The echo path's gain as estimated now (None: too little playback seen)."""
        if len(self._ratios) < self.config.min_frames:
            return None
        return float(np.percentile(self._ratios, self.config.percentile))

    def update(self, frame: Frame, played: np.ndarray) -> bool:
        """One 30 ms microphone frame and what the speaker played over it and the `delay_s`
        before it; True: interrupt."""
        speech = self._vad.update(frame).prob >= self.config.prob
        mic, ref = _db(frame.samples), _loudest_db(played)
        if ref <= -60.0:  # nothing playing: the VAD alone, once it has let go of the echo
            self._echo_in_vad = self._echo_in_vad and speech
            self.run = self.run + 30 if speech and not self._echo_in_vad else 0
            return self.run >= self.config.ms
        # the speaker is sounding: frames louder than its echo start the run at once (Silero's
        # windows lag the onset by a frame or two); the VAD must agree by the run's last frame
        self._echo_in_vad = True
        self._ratios.append(mic - ref)
        c = self.coupling_db
        self.run = self.run + 30 if c is not None and mic - ref > c + self.config.margin_db else 0
        return self.run >= self.config.ms and speech


def _loudest_db(x: np.ndarray, n: int = 480) -> float:
    if len(x) <= n:
        return _db(x)
    return max(_db(x[i:i + n]) for i in range(0, len(x) - n + 1, n // 2))


def _db(x: np.ndarray) -> float:
    if not len(x):
        return -120.0
    return 10 * math.log10(float(np.mean(np.square(x, dtype=np.float64))) + 1e-12)
