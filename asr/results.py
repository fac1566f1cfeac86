"""Typed results of the recognizer."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Word:
    word: str
    start: float
    end: float
    probability: float


@dataclass(frozen=True)
class Hypothesis:
    text: str
    tokens: tuple[int, ...]
    sum_logprob: float
    avg_logprob: float
    score: float  # what the beam ranks by: sum_logprob / length


@dataclass(frozen=True)
class Segment:
    start: float
    end: float
    text: str
    tokens: tuple[int, ...]
    avg_logprob: float
    compression_ratio: float
    no_speech_prob: float
    temperature: float
    words: tuple[Word, ...] = ()


@dataclass(frozen=True)
class Transcript:
    text: str
    segments: tuple[Segment, ...]
    nbest: tuple[Hypothesis, ...]  # whole-text alternatives, best first
    duration: float
    words: tuple[Word, ...] = field(default=())
