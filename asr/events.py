"""Streaming events (DESIGN.md): frozen dataclasses, written as JSON lines.

``t`` is the time on the audio clock at which the result reaches the user,
compute time included.
"""
from __future__ import annotations

import json
from dataclasses import dataclass


@dataclass(frozen=True)
class CommittedWord:
    w: str
    start: float
    end: float
    committed_at: float


@dataclass(frozen=True)
class Partial:
    stream: str
    t: float
    committed: str
    tentative: str
    type: str = "partial"


@dataclass(frozen=True)
class Endpoint:
    stream: str
    t: float
    speech_end: float
    pass_: int  # 1: the first pass alone ended the turn (hard limit, no arbitrator); 2: the arbitrator decided
    accepted: bool
    prob: float | None = None  # the arbitrator's probability that the turn is over
    first_pass: float | None = None  # when the first pass proposed this endpoint (audio clock)
    type: str = "endpoint"


@dataclass(frozen=True)
class Final:
    stream: str
    t: float
    text: str
    nbest: tuple[tuple[str, float], ...]
    words: tuple[CommittedWord, ...]
    type: str = "final"


Event = Partial | Endpoint | Final


def to_dict(e: Event) -> dict:
    if isinstance(e, Partial):
        return {"type": e.type, "stream": e.stream, "t": round(e.t, 3), "committed": e.committed,
                "tentative": e.tentative}
    if isinstance(e, Endpoint):
        d = {"type": e.type, "stream": e.stream, "t": round(e.t, 3), "speech_end": round(e.speech_end, 3),
             "pass": e.pass_, "accepted": e.accepted}
        if e.prob is not None:
            d["prob"] = round(e.prob, 4)
        if e.first_pass is not None:
            d["first_pass"] = round(e.first_pass, 3)
        return d
    return {"type": e.type, "stream": e.stream, "t": round(e.t, 3), "text": e.text,
            "nbest": [{"text": t, "score": round(s, 4)} for t, s in e.nbest],
            "words": [{"w": w.w, "start": round(w.start, 3), "end": round(w.end, 3),
                       "committed_at": round(w.committed_at, 3)} for w in e.words]}


def to_json(e: Event) -> str:
    return json.dumps(to_dict(e), ensure_ascii=False)
