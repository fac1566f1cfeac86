"""Transcript output formats: txt, json, srt, vtt."""
from __future__ import annotations

import json
from dataclasses import asdict

from asr.results import Transcript

FORMATS = ("txt", "json", "srt", "vtt")


def to_dict(t: Transcript) -> dict:
    return {
        "text": t.text,
        "duration": round(t.duration, 3),
        "segments": [
            {"start": s.start, "end": s.end, "text": s.text.strip(), "avg_logprob": round(s.avg_logprob, 4),
             "no_speech_prob": round(s.no_speech_prob, 4), "temperature": s.temperature,
             "words": [asdict(w) for w in s.words]}
            for s in t.segments
        ],
        "nbest": [{"text": h.text, "score": round(h.score, 4), "sum_logprob": round(h.sum_logprob, 3)} for h in t.nbest],
    }


def _stamp(seconds: float, sep: str) -> str:
    ms = max(0, round(seconds * 1000))
    h, ms = divmod(ms, 3_600_000)
    m, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def render(t: Transcript, fmt: str) -> str:
    if fmt == "txt":
        return t.text + "\n"
    if fmt == "json":
        return json.dumps(to_dict(t), ensure_ascii=False) + "\n"
    if fmt == "srt":
        return "".join(
            f"{i}\n{_stamp(s.start, ',')} --> {_stamp(s.end, ',')}\n{s.text.strip()}\n\n"
            for i, s in enumerate(t.segments, 1)
        )
    if fmt == "vtt":
        cues = "".join(f"{_stamp(s.start, '.')} --> {_stamp(s.end, '.')}\n{s.text.strip()}\n\n" for s in t.segments)
        return "WEBVTT\n\n" + cues
    raise ValueError(f"unknown format {fmt!r}; choose from {', '.join(FORMATS)}")
