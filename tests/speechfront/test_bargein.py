"""The barge-in detector: the reply's own echo does not interrupt; the user over it does."""
from __future__ import annotations

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
