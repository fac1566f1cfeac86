"""LTTS: tagged text in, speech out, a sentence (or phrase) at a time.

Each sentence is cut into phrases at pauses, sounds and changes of rate or expressiveness; a
phrase is one call of the voice (rate → length scale, expressiveness → noise scales). Inside a
phrase, the pieces' pitch, gain, whisper and emphasis are applied to their own samples, found
from the voice's per-phoneme durations.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from .effects import Local, blocks
from .tags import STYLES, Pause, Script, Sound, Speech, Style, parse
from .voice import PiperVoice

SOUNDS = {  # non-verbal events, spoken by the same voice
    "laugh": ("ha ha ha!", Style(rate=0.85, pitch=3.0, expressive=1.4)),
    "sigh": ("haaah.", Style(rate=1.6, pitch=-2.0, gain_db=-6.0, whisper=True)),
}
_EMPHASIS_RATE = STYLES["emphasis"].rate


@dataclass
class Chunk:
    audio: np.ndarray  # float32 mono
    sample_rate: int
    text: str  # what the phrase says, on its first chunk; "" for a pause or a later chunk


class Synthesizer:
    def __init__(self, voice: PiperVoice | None = None, threads: int = 2, seed: int | None = 0):
        self.voice = voice or PiperVoice(threads=threads, seed=seed)
        self.voice.render(["Hello."])  # onnxruntime's first run is slow; take it at load, not on the first reply

    @property
    def sample_rate(self) -> int:
        return self.voice.sample_rate

    def stream(self, text: str | Script, quick_start: int | None = None) -> Iterator[Chunk]:
        """Chunks in order; the first comes as soon as the first phrase is rendered.

        quick_start=N: render the first phrase's opening (to its first comma, or N words) on its
        own, so the first audio comes after a short render (a reply waits for it), at the price
        of a phrase break there."""
        script = text if isinstance(text, Script) else parse(text)
        first = quick_start
        for sentence in script.sentences:
            for phrase in _phrases(sentence):
                if first and not isinstance(phrase, Pause):
                    head, phrase = _opening(phrase, first)
                    first = None
                    if head:
                        yield from self._render(head)
                        if not phrase:
                            continue
                if isinstance(phrase, Pause):
                    yield Chunk(np.zeros(int(phrase.ms * self.sample_rate / 1000.0), np.float32), self.sample_rate, "")
                else:
                    yield from self._render(phrase)

    def synthesize(self, text: str | Script) -> tuple[np.ndarray, int]:
        """The whole text as one float32 array, and its sample rate."""
        parts = [c.audio for c in self.stream(text)]
        return (np.concatenate(parts) if parts else np.zeros(0, np.float32)), self.sample_rate

    def _render(self, pieces: list[Speech]) -> Iterator[Chunk]:
        rate, expressive = _base(pieces[0].style)
        out = self.voice.render([p.text for p in pieces], rate=rate, expressive=expressive)
        changes = [Local(a, b, p.style.pitch, p.style.gain_db, p.style.rate / rate, p.style.whisper)
                   for p, (a, b) in zip(pieces, out.spans)]
        text = " ".join(p.text for p in pieces)
        for k, audio in enumerate(blocks(out.audio, self.sample_rate, changes)):
            yield Chunk(_limit(audio), self.sample_rate, "" if k else text)  # the text rides on a phrase's first chunk


def loopback(audio: np.ndarray, sample_rate: int, pad_s: float = 0.3) -> np.ndarray:
    """The output as the recognizer hears it: 16 kHz, with the silence a microphone would have
    around it (speech that starts and stops at the very first and last sample makes Whisper
    repeat itself now and then)."""
    import soxr

    x = soxr.resample(audio, sample_rate, 16000).astype(np.float32)
    z = np.zeros(int(pad_s * 16000), np.float32)
    return np.concatenate([z, x, z])


def _base(style: Style) -> tuple[float, float]:
    """The phrase-level controls of a style: emphasis's own slowing is local, not the phrase's."""
    return (style.rate / _EMPHASIS_RATE if style.emphasis else style.rate), style.expressive


def _phrases(sentence: list) -> Iterator[list[Speech] | Pause]:
    run: list[Speech] = []
    for p in sentence:
        if isinstance(p, Sound):
            text, style = SOUNDS[p.kind]
            p = [Speech(text, p.style.then(style))]
        if isinstance(p, Speech) and run and _base(p.style) == _base(run[0].style):
            run.append(p)
            continue
        if run:
            yield run
            run = []
        if isinstance(p, Speech):
            run = [p]
        else:
            yield p  # a pause, or a sound's own phrase
    if run:
        yield run


def _opening(pieces: list[Speech], words: int) -> tuple[list[Speech], list[Speech]]:
    """The phrase split after its first comma within `words` words, else after `words` words;
    nothing is split off a phrase not much longer than that."""
    flat = [(k, w) for k, p in enumerate(pieces) for w in p.text.split()]
    if len(flat) <= words + 2:
        return [], pieces
    cut = next((i + 1 for i, (_, w) in enumerate(flat[:words]) if w.endswith((",", ";", ":"))), words)
    head: list[Speech] = []
    tail: list[Speech] = []
    for k, p in enumerate(pieces):
        mine = [w for i, (j, w) in enumerate(flat) if j == k and i < cut]
        rest = [w for i, (j, w) in enumerate(flat) if j == k and i >= cut]
        if mine:
            head.append(Speech(" ".join(mine), p.style))
        if rest:
            tail.append(Speech(" ".join(rest), p.style))
    return head, tail


def _limit(x: np.ndarray, knee: float = 0.9) -> np.ndarray:
    """Soft clip above the knee so loud styles do not wrap or square off."""
    a = np.abs(x)
    over = a > knee
    if over.any():
        x = x.copy()
        x[over] = np.sign(x[over]) * (knee + (1 - knee) * np.tanh((a[over] - knee) / (1 - knee)))
    return x.astype(np.float32)
