"""The barge-in detector: the reply's own echo does not interrupt; the user over it does."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from asr.frames import Frame
from speechfront.bargein import BargeIn

SR = 16000


def _run(det: BargeIn, mic: np.ndarray, played: np.ndarray, delay: int = 480) -> int | None:
    """The frame index at which the detector interrupts, or None."""
    for i in range(len(mic) // 480):
        a, b = i * 480, (i + 1) * 480
        ref = played[max(0, a - int(0.15 * SR)): b]
        if det.update(Frame("mic", i, mic[a:b]), ref):
            return i
    return None


@pytest.mark.parametrize("gain,delay", [(0.2, 480), (0.4, 480), (0.7, 480), (0.4, 1600), (0.7, 1600)])
def test_echo_of_the_reply_alone_does_not_interrupt(demo_audio, gain, delay):
    reply = demo_audio[: 6 * SR]
    echo = gain * np.concatenate([np.zeros(delay, np.float32), reply[:-delay]])  # 30 or 100 ms late
    noise = 0.001 * np.random.default_rng(0).standard_normal(len(echo)).astype(np.float32)
    assert _run(BargeIn(), echo + noise, reply) is None


def test_the_user_over_the_echo_interrupts_soon_after_the_onset(demo_audio):
    reply = demo_audio[: 6 * SR]
    echo = 0.4 * np.concatenate([np.zeros(480, np.float32), reply[:-480]])
    words = demo_audio[int(6.3 * SR):]  # "Fail again. Fail better.", from a pause
    on = 3 * SR
    user = np.zeros(on + len(words), np.float32)
    user[on:] = 2.0 * words
    echo = np.pad(echo, (0, len(user) - len(echo)))
    from endpointing.data import speech_bounds

    onset = on / SR + speech_bounds(words)[0]
    hit = _run(BargeIn(), echo + user, np.pad(reply, (0, len(user) - len(reply))))
    assert hit is not None
    t = (hit + 1) * 0.03
    assert onset <= t <= onset + 0.1


def test_without_the_guard_the_echo_would_interrupt(demo_audio):
    """The echo guard is what stops the case above: Silero alone hears speech in the echo."""
    reply = demo_audio[: 6 * SR]
    echo = 0.4 * np.concatenate([np.zeros(480, np.float32), reply[:-480]])
    silent_ref = np.zeros_like(reply)  # the detector is told nothing is playing
    assert _run(BargeIn(), echo, silent_ref) is not None


def _with_gaps(x: np.ndarray, seed: int = 0) -> np.ndarray:
    """The reply with the speaker silent now and then (a slow synthesizer running dry)."""
    rng = np.random.default_rng(seed)
    parts, i = [], 0
    while i < len(x):
        n = int(rng.integers(SR // 4, SR))
        parts += [x[i:i + n], np.zeros(int(rng.uniform(0.1, 0.5) * SR), np.float32)]
        i += n
    return np.concatenate(parts)


class _Held:
    """A VAD that calls speech whatever is louder than -60 dB and for `hold` frames after it, as
    Silero does after our voice's words (up to 0.57 at 120 ms after the echo stopped)."""

    def __init__(self, hold: int):
        self.hold, self.left = hold, 0

    def update(self, frame: Frame):
        from speechfront.bargein import _db

        self.left = self.hold if _db(frame.samples) > -60 else max(0, self.left - 1)
        return SimpleNamespace(prob=1.0 if self.left else 0.0)


def test_the_vad_holding_on_to_the_echo_in_a_pause_is_not_the_user(demo_audio):
    reply = np.concatenate([demo_audio[: 2 * SR], np.zeros(SR, np.float32), demo_audio[2 * SR: 4 * SR]])
    echo = 0.3 * np.concatenate([np.zeros(480, np.float32), reply[:-480]])
    det = BargeIn()
    det._vad = _Held(hold=8)  # 240 ms: past the 150 ms the speaker's level looks back over
    assert _run(det, echo, reply) is None
    words = 0.5 * demo_audio[int(6.3 * SR): int(7.0 * SR)]
    pause = 2 * SR + SR // 2  # the user speaks in the reply's pause, after the VAD let go
    user = echo.copy()
    user[pause: pause + len(words)] += words
    det = BargeIn()
    det._vad = _Held(hold=8)
    hit = _run(det, user, reply)
    from endpointing.data import speech_bounds

    onset = pause / SR + speech_bounds(words)[0]
    assert hit is not None and onset <= (hit + 1) * 0.03 <= onset + 0.1, (hit, onset)


@pytest.mark.parametrize("seed", range(2))
def test_echo_that_stops_short_does_not_interrupt(demo_audio, seed):
    """The speaker falls silent mid-word now and then (a synthesizer running dry)."""
    reply = _with_gaps(demo_audio[: 6 * SR], seed)
    echo = 0.3 * np.concatenate([np.zeros(480, np.float32), reply[:-480]])
    noise = 1e-4 * np.random.default_rng(seed).standard_normal(len(echo)).astype(np.float32)
    assert _run(BargeIn(), echo + noise, reply) is None


def test_a_new_reply_does_not_inherit_the_last_words_heard(demo_audio):
    """The user's words that stopped the last reply are not speech at the next reply's first
    frames: a new reply starts the VAD afresh."""
    reply = demo_audio[: 3 * SR]
    echo = 0.3 * np.concatenate([np.zeros(480, np.float32), reply[:-480]])
    words = demo_audio[int(6.3 * SR): int(7.3 * SR)]
    mic = np.concatenate([echo, words])
    det = BargeIn()
    assert _run(det, mic, np.pad(reply, (0, len(words)))) is not None  # the user stops the reply
    det.reset()
    lead = np.zeros(SR // 10, np.float32)  # our voice starts with a little silence
    assert _run(det, np.concatenate([lead, echo]), np.concatenate([lead, reply])) is None  # plays on
