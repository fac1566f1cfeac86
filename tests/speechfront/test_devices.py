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


def test_no_microphone_is_one_clear_message(monkeypatch):
    """PortAudio without an input device (a fake one here, so it runs on any machine)."""
    import speechfront.devices as d

    sd = _FakeSd(in_rate=16000)

    def no_input(device=None, kind=None):
        if kind == "input":
            raise sd.PortAudioError("No input device found")
        return {"name": "fake", "default_samplerate": 48000.0}

    monkeypatch.setattr(sd, "query_devices", no_input)
    monkeypatch.setattr(d, "load_sounddevice", lambda: sd)
    with pytest.raises(DeviceError, match="no microphone"):
        d.SoundDevices()


def test_no_microphone_with_the_real_portaudio():
    pytest.importorskip("sounddevice", reason="sounddevice is not installed")
    from speechfront.devices import SoundDevices, list_devices

    if any(d.inputs for d in list_devices()):
        pytest.skip("needs a machine without a microphone (the fake-PortAudio test above covers the message)")
    with pytest.raises(DeviceError, match="no microphone"):
        SoundDevices()


class _FakeSd:
    """Just enough of the sounddevice module to drive SoundDevices' callbacks by hand."""

    class PortAudioError(Exception):
        pass

    class _Flags:
        input_overflow = False

    class _Stream:
        def __init__(self, samplerate, channels, dtype, device, callback, blocksize=0):
            self.rate, self.callback, self.active, self.latency = samplerate, callback, False, 0.02

        def start(self):
            self.active = True

        def stop(self):
            self.active = False

        def close(self):
            pass

    InputStream = OutputStream = _Stream

    def __init__(self, in_rate):
        self.in_rate = in_rate
        self.default = type("D", (), {"device": (0, 0)})()

    def query_devices(self, device=None, kind=None):
        return {"name": "fake", "default_samplerate": self.in_rate if kind == "input" else 48000.0}

    def check_input_settings(self, device=None, samplerate=None, **kw):
        if samplerate != self.in_rate:
            raise self.PortAudioError("Invalid sample rate")


def test_sound_devices_resample_the_microphone_and_render_the_speaker(monkeypatch):
    import speechfront.devices as d

    sd = _FakeSd(in_rate=44100)
    monkeypatch.setattr(d, "load_sounddevice", lambda: sd)
    dev = d.SoundDevices()
    assert dev.in_rate == 44100 and dev.out_rate == 48000  # 16 kHz not offered: the native rate
    dev.start()
    tone = np.sin(2 * np.pi * 440 * np.arange(44100) / 44100).astype(np.float32)
    for i in range(0, len(tone), 1323):  # the capture callback, 30 ms at a time
        dev._in.callback(tone[i:i + 1323, None], 1323, None, sd._Flags())
    got = []
    while (b := dev.read(timeout=0.01)) is not None:
        got.append(b)
    x = np.concatenate(got)
    assert abs(len(x) - 16000) < 400  # resampled to 16 kHz (the resampler holds a little back)
    peak = np.argmax(np.abs(np.fft.rfft(x[2000:14000])))
    assert abs(peak * 16000 / 12000 - 440) < 3
    start = dev.play(np.ones(4800, np.float32), 48000)  # 100 ms, from now on the session clock
    blocks = []
    for _ in range(int((start + 0.2) * 100)):  # the output callback, 10 ms at a time
        out = np.zeros((480, 1), np.float32)
        dev._out.callback(out, 480, None, sd._Flags())
        blocks.append(out[:, 0])
    y = np.concatenate(blocks)
    on = np.flatnonzero(y)
    assert len(on) == 4800 and on[0] == round(start * 48000)  # played once, when it said it would
    dev.play(np.ones(48000, np.float32), 48000)
    dev.stop_playback()
    dev._out.callback(out, 480, None, sd._Flags())
    assert not out.any()  # stopped: nothing more comes out
    dev._in.active = False
    with pytest.raises(DeviceError, match="stopped"):
        dev.read(timeout=0.01)
    dev.close()


def test_a_live_speaker_forgets_old_audio_but_plays_the_recent():
    sp = Speaker(1000, keep_s=5.0)
    for k in range(100):  # 100 one-second replies, one every 2 s
        sp.queue(np.full(1000, k + 1, np.float32), 1000, now=2.0 * k)
    assert len(sp.line) <= 1000 * 30  # not 200 s of it
    np.testing.assert_array_equal(sp.between(198.0, 199.0), np.full(1000, 100, np.float32))
    assert not sp.between(0.0, 1.0).any()  # long forgotten: silence
    sp.stop(198.5)
    assert not sp.between(198.5, 199.0).any() and sp.between(198.0, 198.5).all()
