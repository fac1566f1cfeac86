"""The fake devices (time, echo, capture) and the PortAudio backend's failure messages."""
from __future__ import annotations

import builtins

import numpy as np
import pytest

from speechfront.devices import BLOCK, DeviceError, FakeDevices, Speaker, load_sounddevice


def test_fake_microphone_gives_the_audio_then_silence_then_ends():
    mic = np.random.default_rng(0).standard_normal(16000 // 5).astype(np.float32)
    dev = FakeDevices(mic, trailing_s=0.1)
    dev.start()
    blocks = []
    with pytest.raises(EOFError):
        while True:
            b = dev.read(timeout=1.0)
            if b is not None:
                blocks.append(b)
    got = np.concatenate(blocks)
    assert all(len(b) == BLOCK for b in blocks[:-1])
    assert len(got) == len(mic) + 1600
    np.testing.assert_array_equal(got[: len(mic)], mic)
    assert not got[len(mic):].any()
    assert dev.now() >= len(got) / 16000  # delivered no sooner than captured


def test_fake_microphone_does_not_deliver_audio_before_it_is_captured():
    dev = FakeDevices(np.zeros(16000, np.float32))
    dev.start()
    assert dev.read(timeout=0) is None  # the first 30 ms block is not there yet
    assert dev.read(timeout=1.0) is not None


def test_speaker_queues_after_what_plays_and_stop_drops_the_rest():
    sp = Speaker(16000)
    one = np.ones(1600, np.float32)
    assert sp.queue(one, 16000, now=1.0) == 1.0
    assert sp.queue(one, 16000, now=1.05) == pytest.approx(1.1)  # after the first, not over it
    assert sp.end == pytest.approx(1.2)
    sp.stop(1.15)
    assert sp.end == pytest.approx(1.15)
    line = sp.played()
    assert line[int(1.0 * 16000): int(1.15 * 16000)].all() and not line[int(1.15 * 16000):].any()
    assert len(sp.between(0.0, 2.0)) == 32000  # padded past the end


def test_speaker_resamples_what_it_is_given():
    sp = Speaker(16000)
    sp.queue(np.ones(22050, np.float32), 22050, now=0.0)
    assert sp.end == pytest.approx(1.0, abs=1e-3)


def test_fake_echo_is_the_speaker_delayed_into_the_microphone():
    dev = FakeDevices(np.zeros(16000, np.float32), echo_gain=0.5, echo_delay_s=0.03)
    dev.start()
    tone = np.sin(np.arange(8000) * 0.3).astype(np.float32)
    start = dev.play(tone, 16000)
    got = []
    while len(got) * BLOCK < 16000:
        b = dev.read(timeout=1.0)
        if b is not None:
            got.append(b)
    x = np.concatenate(got)
    a = int(round((start + 0.03) * 16000))
    np.testing.assert_allclose(x[a: a + 4000], 0.5 * tone[:4000], atol=1e-6)
    assert not x[: a - 1].any()


def test_fake_stop_playback_silences_the_rest():
    dev = FakeDevices(np.zeros(1600, np.float32))
    dev.start()
    dev.play(np.ones(16000, np.float32), 16000)
    t = dev.stop_playback()
    assert dev.playing_until() == pytest.approx(t)
    assert not dev.speaker.between(t + 0.001, 2.0).any()


def test_missing_portaudio_is_one_clear_message(monkeypatch):
    real = builtins.__import__

    def fake(name, *a, **k):
        if name == "sounddevice":
            raise OSError("PortAudio library not found")
        return real(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", fake)
    with pytest.raises(DeviceError, match="libportaudio2"):
        load_sounddevice()


def test_no_microphone_is_one_clear_message():
    pytest.importorskip("sounddevice", reason="sounddevice is not installed")
    from speechfront.devices import SoundDevices, list_devices

    if any(d.inputs for d in list_devices()):
        pytest.skip("this machine has a microphone")
    with pytest.raises(DeviceError, match="no microphone"):
        SoundDevices()
