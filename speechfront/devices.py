"""Audio devices for the microphone loop: one interface, a PortAudio backend and a fake one.

The loop sees a microphone that delivers 16 kHz mono blocks and a speaker that takes float32
audio at any rate. Times are seconds on the session clock (0 when the microphone opened), which
is also the time of the recognizer's frames. The fake backend plays a WAV as the microphone in
real time (so every compute delay is real, threads included) and captures what the speaker
would have played, with optional echo of it into the microphone.
"""
from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass

import logging

import numpy as np
import soxr

from asr.frames import SAMPLE_RATE

log = logging.getLogger("speechfront")
BLOCK = 480  # 30 ms: the loop sees speech within one frame of its capture


class DeviceError(RuntimeError):
    """A device problem, with a message for the user (no traceback)."""


@dataclass(frozen=True)
class DeviceInfo:
    index: int
    name: str
    inputs: int
    outputs: int
    rate: float
    default_in: bool
    default_out: bool


class Speaker:
    """The speaker's timeline at its own rate: what plays when.

    queue() places audio after what is already queued (or now, if nothing is); stop() drops
    whatever has not played by then. The device's output callback reads it by time. With
    `keep_s`, audio older than that is forgotten (a live session runs for hours); without,
    everything stays (the fake devices' capture).
    """

    def __init__(self, rate: int, keep_s: float | None = None):
        self.rate, self.keep_s = rate, keep_s
        self.lock = threading.Lock()
        self.line = np.zeros(0, np.float32)  # index = session time * rate - base
        self.base = 0  # samples forgotten from the front
        self.end = 0.0  # when the queued audio ends

    def queue(self, audio: np.ndarray, rate: int, now: float) -> float:
        x = _resample(audio, rate, self.rate)
        with self.lock:
            self._forget(now)
            start = max(now, self.end)
            a = int(round(start * self.rate)) - self.base
            b = a + len(x)
            if len(self.line) < b:
                self.line = np.concatenate([self.line, np.zeros(b - len(self.line) + self.rate * 5, np.float32)])
            self.line[a:b] = x
            self.end = max(self.end, (b + self.base) / self.rate)
            return start

    def stop(self, now: float) -> None:
        with self.lock:
            if self.end > now:
                self.line[max(0, int(round(now * self.rate)) - self.base):] = 0.0
                self.end = now

    def between(self, t0: float, t1: float) -> np.ndarray:
        """What plays from t0 to t1 (silence before the session, after the end, or forgotten)."""
        a, b = int(round(t0 * self.rate)) - self.base, int(round(t1 * self.rate)) - self.base
        with self.lock:
            out = self.line[max(0, a): max(0, b)]
        before = min(b, 0) - min(a, 0)
        return np.pad(out, (before, (b - a) - before - len(out)))

    def played(self) -> np.ndarray:
        """Everything queued, from the session's start (nothing forgotten: no keep_s)."""
        with self.lock:
            return self.line[: int(round(self.end * self.rate)) - self.base].copy()

    def _forget(self, now: float) -> None:
        if self.keep_s is None:
            return
        drop = min(int((now - self.keep_s) * self.rate) - self.base, len(self.line))
        if drop > self.rate * 10:  # in large steps, not on every reply
            self.line = self.line[drop:]
            self.base += drop


class FakeDevices:
    """A WAV (16 kHz mono array) as the microphone, in real time; the speaker is captured.

    After the audio, the microphone gives `trailing_s` of silence, then ends (read raises
    EOFError). `echo_gain` feeds the speaker back into the microphone `echo_delay_s` later.
    """

    def __init__(self, mic: np.ndarray, trailing_s: float = 3.0, echo_gain: float = 0.0,
                 echo_delay_s: float = 0.03, block: int = BLOCK):
        self.mic = np.concatenate([np.asarray(mic, np.float32), np.zeros(int(trailing_s * SAMPLE_RATE), np.float32)])
        self.block = block
        self.echo_gain = echo_gain
        self.echo_delay = echo_delay_s
        self.speaker = Speaker(SAMPLE_RATE)  # 16 kHz: what the echo adds to the microphone
        self.output_latency = 0.0
        self._pos = 0
        self._t0: float | None = None

    def start(self) -> None:
        self._t0 = time.perf_counter()

    def now(self) -> float:
        return time.perf_counter() - self._t0

    def read(self, timeout: float) -> np.ndarray | None:
        """The next block once it has been captured; None if that takes longer than timeout."""
        if self._pos >= len(self.mic):
            raise EOFError
        n = min(self.block, len(self.mic) - self._pos)
        ready = (self._pos + n) / SAMPLE_RATE
        wait = ready - self.now()
        if wait > timeout:
            time.sleep(max(0.0, timeout))
            return None
        if wait > 0:
            time.sleep(wait)
        t0 = self._pos / SAMPLE_RATE
        x = self.mic[self._pos: self._pos + n].copy()
        if self.echo_gain:
            x += self.echo_gain * self.speaker.between(t0 - self.echo_delay, ready - self.echo_delay)
        self._pos += n
        return x

    def play(self, audio: np.ndarray, rate: int) -> float:
        """Queue audio; returns when its first sample sounds."""
        return self.speaker.queue(audio, rate, self.now())

    def stop_playback(self) -> float:
        t = self.now()
        self.speaker.stop(t)
        return t

    def playing_until(self) -> float:
        return self.speaker.end

    def close(self) -> None:
        pass


class SoundDevices:
    """PortAudio through sounddevice: a capture callback fills a queue, an output callback
    drains the speaker's timeline. Any native rate; the microphone is resampled to 16 kHz."""

    def __init__(self, input_device=None, output_device=None, speaker: bool = True):
        """speaker=False: capture only (no output stream is opened)."""
        self.sd = load_sounddevice()
        self.input_device, self.output_device = _device(input_device), _device(output_device)
        info_in = _query(self.sd, self.input_device, "input")
        info_out = _query(self.sd, self.output_device, "output") if speaker else None
        self.in_rate = SAMPLE_RATE if _takes_16k(self.sd, self.input_device) \
            else int(info_in["default_samplerate"])
        self.out_rate = int(info_out["default_samplerate"]) if info_out else SAMPLE_RATE
        self.with_speaker = speaker
        self.speaker = Speaker(self.out_rate, keep_s=60.0)
        self._q: queue.Queue[np.ndarray] = queue.Queue()
        self._resample = None if self.in_rate == SAMPLE_RATE else soxr.ResampleStream(
            self.in_rate, SAMPLE_RATE, 1, dtype="float32")
        self._t0 = 0.0
        self._pos_out = 0  # output samples handed to PortAudio (at out_rate)
        self.overflows = 0  # capture blocks PortAudio dropped because the loop fell behind
        self.output_latency = 0.0
        self._in = self._out = None

    def start(self) -> None:
        sd = self.sd
        try:
            self._in = sd.InputStream(samplerate=self.in_rate, channels=1, dtype="float32", device=self.input_device,
                                      blocksize=int(self.in_rate * BLOCK / SAMPLE_RATE), callback=self._captured)
            if self.with_speaker:
                self._out = sd.OutputStream(samplerate=self.out_rate, channels=1, dtype="float32",
                                            device=self.output_device, callback=self._render)
            self._t0 = time.perf_counter()
            self._in.start()
            if self._out is not None:
                self._out.start()
                self.output_latency = float(self._out.latency)
        except sd.PortAudioError as e:
            self.close()
            raise DeviceError(f"cannot open the audio device: {e}") from None

    def now(self) -> float:
        return time.perf_counter() - self._t0

    def _captured(self, indata, frames, t, status) -> None:
        if status.input_overflow:
            self.overflows += 1
        x = indata[:, 0].copy()
        self._q.put(self._resample.resample_chunk(x) if self._resample is not None else x)

    def _render(self, outdata, frames, t, status) -> None:
        t0 = self._pos_out / self.out_rate
        outdata[:, 0] = self.speaker.between(t0, t0 + frames / self.out_rate)[:frames]
        self._pos_out += frames

    def read(self, timeout: float) -> np.ndarray | None:
        try:
            return self._q.get(timeout=timeout)
        except queue.Empty:
            if self._in is not None and not self._in.active:
                raise DeviceError("the input device stopped delivering audio") from None
            return None

    def play(self, audio: np.ndarray, rate: int) -> float:
        # the output callback has rendered up to _pos_out: queue after that, plus its latency
        return self.speaker.queue(audio, rate, max(self.now(), self._pos_out / self.out_rate))

    def stop_playback(self) -> float:
        t = self._pos_out / self.out_rate
        self.speaker.stop(t)
        return t + self.output_latency

    def playing_until(self) -> float:
        return self.speaker.end + self.output_latency

    def close(self) -> None:
        if self.overflows:
            log.warning("the microphone dropped audio %d times: the machine could not keep up", self.overflows)
        for s in (self._in, self._out):
            if s is not None:
                try:
                    s.stop()
                    s.close()
                except self.sd.PortAudioError:
                    pass
        self._in = self._out = None


def load_sounddevice():
    try:
        import sounddevice
    except ImportError:
        raise DeviceError("the microphone loop needs sounddevice: pip install sounddevice") from None
    except OSError as e:  # the module is there but the PortAudio library is not
        raise DeviceError(f"the PortAudio library is missing ({e}); on Debian/Ubuntu: apt install libportaudio2") \
            from None
    return sounddevice


def list_devices() -> list[DeviceInfo]:
    sd = load_sounddevice()
    try:
        devices = sd.query_devices()
        din, dout = sd.default.device
    except sd.PortAudioError as e:
        raise DeviceError(f"cannot list audio devices: {e}") from None
    return [DeviceInfo(i, d["name"], d["max_input_channels"], d["max_output_channels"], d["default_samplerate"],
                       i == din, i == dout) for i, d in enumerate(devices)]


def _query(sd, device, kind: str) -> dict:
    what = "microphone" if kind == "input" else "speaker"
    try:
        return sd.query_devices(device, kind)
    except (sd.PortAudioError, ValueError) as e:
        which = f" {device!r}" if device is not None else ""
        raise DeviceError(f"no {what}{which} found (PortAudio: {e}); `speechfront devices` lists the devices") \
            from None


def _device(d):
    return int(d) if isinstance(d, str) and d.isdigit() else d


def _takes_16k(sd, device) -> bool:
    try:
        sd.check_input_settings(device=device, samplerate=SAMPLE_RATE, channels=1, dtype="float32")
        return True
    except (sd.PortAudioError, ValueError):
        return False


def _resample(audio: np.ndarray, rate: int, to: int) -> np.ndarray:
    a = np.asarray(audio, np.float32)
    return a if rate == to or not len(a) else soxr.resample(a, rate, to).astype(np.float32)
