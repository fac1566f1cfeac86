"""Lookahead policies: which tentative words of a pass become committed.

A committed word is final: it is forced as the decoder's prefix from then on.
Policies see the words after the committed ones, with times on the stream's
audio clock, and return how many of the leading words to commit now, at most
``limit`` (the engine holds commits back early in an utterance, and a policy
still tracks what it saw).

- ``FixedLookahead(ms)``: a word commits once ``ms`` of audio follows its end
  and the pass before read it the same (``agree=False``: one reading is
  enough), and not before 2 s of audio follows the utterance's speech onset.
- ``DynamicLookahead``: a word commits as soon as it is stable: the same word
  in the previous pass, which had less right context, with enough audio after
  it for its token probability: 200 ms for a sure word, more the less sure it
  is; a word under the threshold waits ``max_ms`` of right context, and then
  commits once two passes agree on it. With a ``StabilityModel``
  (asr/stability.py) a trained score over the word and its neighbours takes
  the place of the probability rule, and the model's settings say how long a
  word may wait and how much audio an utterance's first word needs (the
  default where one ships for the recognizer model).
- ``LocalAgreement(n=2)``: whisper_streaming's policy, the peer: decode every
  ``interval`` seconds and commit the longest prefix that the last two passes
  agree on.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Sequence

from .stability import StabilityModel, load_stability


def word_key(text: str) -> str:
    """What two passes must agree on: the word without case or punctuation."""
    return text.strip().lower().strip(".,!?;:\"'")


@dataclass(frozen=True)
class TentativeWord:
    text: str
    start: float
    end: float
    prob: float  # its least sure token's probability, up to case, punctuation left out (streaming._reading_probs)
    tokens: tuple[int, ...] = ()
    until: float | None = None  # the last word: where the decoder closed its segment
    token_prob: float | None = None  # its least sure token's own probability (None: prob)

    @property
    def low(self) -> float:
        """The least sure token's own probability, as Whisper's word anomaly score reads it."""
        return self.prob if self.token_prob is None else self.token_prob

    @property
    def hold(self) -> float:
        """When the word is over, as far as committing it goes: never, while the aligner gives it
        no frames (two passes put "Ever try." at 0.00-0.00 with "tried" still being spoken); the
        engine gives a frame to such a word with timed words after it (streaming.placed)."""
        if self.end <= self.start:
            return math.inf
        return self.end if self.until is None else max(self.end, self.until)

    @property
    def key(self) -> str:
        return word_key(self.text)

    @property
    def attached(self) -> bool:
        """No space before it: the rest of the word before ("mid" "-stream", "re" "-")."""
        return not self.text.startswith(" ")

    @property
    def open(self) -> bool:
        """Whisper marks a word cut off at the window's end with '...' or '-'."""
        t = self.text.strip()
        return t.endswith("...") or t.endswith("-") or t.endswith("…")


class FixedLookahead:
    def __init__(self, ms: float = 1000.0, min_speech_s: float = 2.0, agree: bool = True):
        self.ms = ms
        # the word must also read the same in the pass before: the pass that first has `ms`
        # after a word is one reading of it ("What I saw" committed as "When I saw")
        self.agree = agree
        self._prev: list[str] = []
        # the engine holds commits back until this much audio follows the speech onset: on
        # less, Whisper can invent a phrase and time it inside that audio, or misread a name it
        # hears nothing after, and a fixed lookahead cannot tell a sure word from an unsure one
        # (fixed 500 ms on 233 dev clips: 8.87 % WER with 1 s, 7.67 % with 2 s; README)
        self.min_speech_s = min_speech_s
        self.interval = 0.0  # decode on every batch
        self.name = f"fixed:{ms:g}" + ("" if agree else ":once")

    def reset(self) -> None:
        self._prev = []

    def commit(self, words: list[TentativeWord], audio_end: float, limit: int | None = None) -> int:
        most = min(_cap(words, limit), _agreed(self._prev, words) if self.agree else len(words))
        n = 0
        while n < most and words[n].hold + self.ms / 1000 <= audio_end and not words[n].open:
            n += 1
        n = _whole(words, n)
        self._prev = [w.key for w in words[n:]]
        return n

    def due(self, words: list[TentativeWord], audio_end: float) -> float | None:
        """When the first of the words `commit` left would commit if the next pass reads it
        alike (this pass's reading is the one it must agree with)."""
        if not _may_be_due(words):
            return None
        return words[0].hold + self.ms / 1000


class DynamicLookahead:
    """Commit a word once the hypothesis up to it has stayed the same while
    ``stable_ms`` of audio arrived and enough audio follows it for how sure its
    tokens are (`needed_ms`): ``right_ms`` from probability ``sure`` up (a word cut
    by the window's end, "a" of "a superior", is often read as another word until
    the next one is heard), ``max_ms`` under ``threshold``, in between less the
    surer it is. A word waiting on ``max_ms`` must have held too (one pass's reading
    of it committed "Street out they swam"); holding alone is no sign a word is
    right (on 233 dev clips, committing any word read alike for 600-800 ms cost 1
    point of WER). Nothing commits before ``min_speech_ms`` of audio follows the
    utterance's onset (see FixedLookahead).

    With ``model``, a word that has held ``stable_ms`` with ``right_ms`` after it
    commits once the model's score reaches its threshold, or at the model's ``max_ms``;
    the utterance's first ``first_words`` words wait for ``first_ms`` after them before
    the score counts (on little audio Whisper misreads an opening: "Wada and" as
    "water in", "Mrs." as "This is")."""

    def __init__(self, threshold: float = 0.5, stable_ms: float = 200.0, max_ms: float = 1200.0,
                 right_ms: float = 200.0, min_speech_ms: float = 0.0, sure: float = 0.8,
                 model: StabilityModel | None = None):
        self.threshold = threshold
        # sure <= threshold: one step at the threshold (right_ms above it); 0.8 took WER on 233
        # dev clips from 8.10 to 7.67 % for 41 ms of P50 (README)
        self.sure = max(sure, threshold)
        self.stable_ms = stable_ms
        self.max_ms = max_ms
        self.right_ms = right_ms
        self.min_speech_s = min_speech_ms / 1000
        self.interval = 0.0
        self.model = model
        self.name = "dynamic" if model is None else learned_spec(model)
        self._prev: list[tuple[str, float]] = []  # (key, time since which it has held)
        self._done = 0  # words committed in this utterance

    def reset(self) -> None:
        self._prev = []
        self._done = 0

    def commit(self, words: list[TentativeWord], audio_end: float, limit: int | None = None) -> int:
        since = held_since(self._prev, words, audio_end)
        probs, lens = [w.prob for w in words], [len(w.key) for w in words]
        n = 0
        for i, w in enumerate(words[: _cap(words, limit)]):
            if w.open or not self.accepts(probs, lens, i, audio_end - since[i], audio_end - w.hold, self._done + i):
                break
            n = i + 1
        n = _whole(words, n)
        self._prev = [(w.key, t) for w, t in zip(words[n:], since[n:])]
        self._done += n
        return n

    def due(self, words: list[TentativeWord], audio_end: float) -> float | None:
        """The stream time at which the first of these uncommitted words (those `commit` left)
        would commit if the passes until then read it as this one did; None if it never would
        on its own (cut off, or not timed)."""
        if not _may_be_due(words):
            return None
        since = self._prev[0][1] if self._prev else audio_end
        return self.first_due([w.prob for w in words], [len(w.key) for w in words], words[0].hold, since,
                              audio_end, self._done)

    def first_due(self, probs: Sequence[float], lens: Sequence[int], hold: float, since: float, t: float,
                  k: int, step: float = 0.03) -> float | None:
        """The first time from t, on a grid of `step` (a frame), at which word 0 of these (over at
        `hold`, read alike since `since`, the utterance's k-th) would commit."""
        if self.model is None:  # the hand rule says when: its hold and the right context it needs
            end = max(hold + self.needed_ms(probs[0]) / 1000, since + self.stable_ms / 1000)
            spans = [(end, end)]
        else:  # the score reads right context and hold up to 2 s; after that only the maximum counts
            cap = hold + self.model.max_ms / 1000
            spans = [(t, min(cap, max(hold, since) + 2.0)), (cap, cap)]
        for a, b in spans:
            first = max(0, math.floor((a - t) / step) - 1)  # a step early: times are sums of floats
            for j in range(first, max(first, math.ceil((b - t) / step)) + 2):
                if self.accepts(probs, lens, 0, t + j * step - since, t + j * step - hold, k):
                    return t + j * step
        return None

    def accepts(self, probs: Sequence[float], lens: Sequence[int], i: int, held_s: float, right_s: float,
                k: int | None = None) -> bool:
        """Word i of the uncommitted words (their probabilities, TentativeWord.prob, and letters), read
        alike for held_s with right_s of audio after it; k: its index in the utterance."""
        if self.model is None:
            return held_s * 1000 >= self.stable_ms and right_s * 1000 >= self.needed_ms(probs[i])
        m, right_ms = self.model, right_s * 1000
        if not self.ready(held_s, right_s) or (k is not None and k < m.first_words and right_ms < m.first_ms):
            return False
        return right_ms >= m.max_ms or m.score(probs, lens, i, right_s, held_s) >= m.threshold

    def ready(self, held_s: float, right_s: float) -> bool:
        """Held stable_ms with right_ms after it: a word the trained score is asked about (and
        trained on)."""
        return held_s * 1000 >= self.stable_ms and right_s * 1000 >= self.right_ms

    def needed_ms(self, prob: float) -> float:
        """Right context a word needs: max_ms under the threshold, right_ms from `sure` up, and
        in between less the surer the word."""
        if prob < self.threshold:
            return self.max_ms
        if prob >= self.sure:
            return self.right_ms
        return self.right_ms + (self.max_ms - self.right_ms) * (self.sure - prob) / (self.sure - self.threshold)


class LocalAgreement:
    def __init__(self, n: int = 2, interval: float = 1.0):
        if n != 2:
            raise ValueError("only LocalAgreement-2 is implemented")
        self.interval = interval
        self.name = "local-agreement-2"
        self._prev: list[str] = []  # the keys of the last pass's uncommitted words

    def reset(self) -> None:
        self._prev = []

    def commit(self, words: list[TentativeWord], audio_end: float, limit: int | None = None) -> int:
        most = min(_cap(words, limit), _agreed(self._prev, words))
        n = 0
        while n < most and not words[n].open:
            n += 1
        n = _whole(words, n)
        self._prev = [w.key for w in words[n:]]
        return n


def held_since(prev: list[tuple[str, float]], words: list[TentativeWord], audio_end: float) -> list[float]:
    """For each word, since when every word up to it has read the same: prev holds the last
    pass's uncommitted (key, since) pairs; a word read otherwise starts now."""
    since, agree = [], True
    for i, w in enumerate(words):
        agree = agree and i < len(prev) and prev[i][0] == w.key
        since.append(prev[i][1] if agree else audio_end)
    return since


def _may_be_due(words: list[TentativeWord]) -> bool:
    """A first word that can commit on its own: not cut off, and timed."""
    return bool(words) and not words[0].open and not math.isinf(words[0].hold)


def _whole(words: list[TentativeWord], n: int) -> int:
    """n, less the words whose rest is still uncommitted: committing "mid" alone left the
    next pass free to drop "-stream" (the forced prefix read "in mid", it went on "searching")."""
    while 0 < n < len(words) and words[n].attached:
        n -= 1
    return n


def _agreed(prev: list[str], words: list[TentativeWord]) -> int:
    """How many leading words read as the last pass read them."""
    n = 0
    while n < min(len(prev), len(words)) and prev[n] == words[n].key:
        n += 1
    return n


def _cap(words: list, limit: int | None) -> int:
    return len(words) if limit is None else min(limit, len(words))


def parse_policy(spec: str, model_name: str | None = None):
    """'fixed:500' (or 'fixed:500:once'); 'dynamic' (the trained rule where asr/weights has one
    for model_name, else the hand rule); 'dynamic:learned[:SCORE[:MIN_MS]][:NAME=VALUE...]' (the
    trained rule with other settings, see _learned); 'dynamic:hand' or 'dynamic:STABLE_MS:MAX_MS:...'
    (the hand rule, up to six numbers); 'local-agreement' ('la2')."""
    if spec.startswith("fixed:"):
        ms, *rest = spec.split(":")[1:]
        if rest not in ([], ["once"]):
            raise ValueError(f"unknown lookahead {spec!r}: use fixed:MS or fixed:MS:once")
        return FixedLookahead(float(ms), agree=not rest)
    if spec == "dynamic" or spec.startswith("dynamic:learned"):
        model = load_stability(model_name) if model_name else None
        if spec == "dynamic":
            return DynamicLookahead(model=model)  # the hand rule where none is trained
        if model is None:
            raise ValueError(f"{spec!r}: no trained stability model for {model_name or 'an unnamed recognizer'}")
        return _learned(spec, model)
    if spec == "dynamic:hand":
        return DynamicLookahead()
    if spec.startswith("dynamic:"):
        ms = [float(x) for x in spec.split(":")[1:]]  # dynamic[:STABLE_MS[:MAX_MS[:RIGHT_MS[:THRESHOLD[:MIN_MS[:SURE]]]]]]
        names = ("stable_ms", "max_ms", "right_ms", "threshold", "min_speech_ms", "sure")
        if len(ms) > len(names):  # zip would drop the rest, and a run would not be the one asked for
            raise ValueError(f"unknown lookahead {spec!r}: dynamic takes at most {len(names)} numbers")
        return DynamicLookahead(**dict(zip(names, ms)))
    if spec in ("local-agreement", "la2", "local-agreement-2"):
        return LocalAgreement()
    raise ValueError(f"unknown lookahead {spec!r}: use fixed:MS, dynamic or local-agreement")


LEARNED_OPTIONS = {"score": "threshold", "max": "max_ms", "first": "first_ms", "words": "first_words"}


def learned_spec(model: StabilityModel) -> str:
    """The spec that gives the trained rule with this model's settings."""
    return (f"dynamic:learned:{model.threshold:g}:max={model.max_ms:g}:first={model.first_ms:g}"
            f":words={model.first_words}")


def _learned(spec: str, model: StabilityModel) -> DynamicLookahead:
    """dynamic:learned, then SCORE and MIN_MS (a start hold: no commit until MIN_MS after the
    speech onset) in order, or by name: score=, min=, max= (ms), first= (ms), words= (the
    model's settings where not given)."""
    parts = spec.split(":")[2:]
    plain = [p for p in parts if "=" not in p]
    named = dict(p.split("=", 1) for p in parts if "=" in p)
    unknown = set(named) - set(LEARNED_OPTIONS) - {"min"}
    if len(plain) > 2 or unknown or (plain and any(k in named for k in ("score", "min")[: len(plain)])):
        raise ValueError(f"unknown lookahead {spec!r}: use dynamic:learned[:SCORE[:MIN_MS]] with "
                         f"any of {', '.join(sorted(LEARNED_OPTIONS) + ['min'])} as NAME=VALUE")
    named = dict(zip(("score", "min"), plain)) | named
    settings = {LEARNED_OPTIONS[k]: (int if k == "words" else float)(v) for k, v in named.items() if k != "min"}
    return DynamicLookahead(model=replace(model, **settings), min_speech_ms=float(named.get("min", 0.0)))
