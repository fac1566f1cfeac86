"""Turn latency of the microphone loop: dev clips played as the microphone, in real time.

Each clip (held-out split) is played through the fake devices with 0.5 s of silence before it
and 3 s after; the loop runs as `speechfront listen` would (engine, two-pass end-pointing,
echo responder with the rule tagger, LTTS; the LLM reranker and
tagger with --rerank / --llm-tags), and the speaker is captured. Turn latency is
the first reply sample minus the acoustic end of speech (the last 10 ms frame within 35 dB of
the clip's peak). The peer in the same run is the same loop ending turns at a fixed 800 ms of
silence (Silero pause tracker), the way a VAD-only assistant does.
"""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from asr.frames import SAMPLE_RATE
from endpointing.data import speech_bounds, split

from .manifest import load_manifest

LEAD_S, TRAIL_S = 0.5, 3.0


@dataclass
class TurnResult:
    id: str
    reference: str
    texts: list[str]  # the finals
    end: float  # acoustic end of speech (session clock)
    final_at: float | None
    reply_ready: float | None  # the responder's text was ready
    reply_start: float | None
    endpoints: int  # accepted endpoints


def play_clip(item_id: str, audio: np.ndarray, reference: str, make_recognizer, responder, synth,
              **loop) -> TurnResult:
    from speechfront.devices import FakeDevices
    from speechfront.loop import Conversation, LoopConfig

    mic = np.concatenate([np.zeros(int(LEAD_S * SAMPLE_RATE), np.float32), audio])
    devices = FakeDevices(mic, trailing_s=TRAIL_S)
    conv = Conversation(devices, make_recognizer(), responder, synth, LoopConfig(**loop))
    turns = conv.run()
    first = turns[0] if turns else None
    return TurnResult(item_id, reference, [t.text for t in turns], LEAD_S + speech_bounds(audio)[1],
                      first.final_at if first else None, first.reply_ready if first else None,
                      first.reply_start if first else None,
                      sum(1 for e in conv.events if e.type == "endpoint" and e.accepted))


def summarize(results: list[TurnResult]) -> dict:
    from .wer import corpus_wer

    lat = [1000 * (r.reply_start - r.end) for r in results if r.reply_start is not None]
    fin = [1000 * (r.final_at - r.end) for r in results if r.final_at is not None]
    pct = (lambda xs, q: round(float(np.percentile(xs, q)), 1) if xs else None)
    return {
        "clips": len(results), "one_turn": sum(len(r.texts) == 1 for r in results),
        "replied": len(lat), "turn_ms_p50": pct(lat, 50), "turn_ms_p90": pct(lat, 90),
        "final_ms_p50": pct(fin, 50), "final_ms_p90": pct(fin, 90),
        "respond_ms_p50": pct([1000 * (r.reply_ready - r.final_at) for r in results if r.reply_ready], 50),
        "voice_ms_p50": pct([1000 * (r.reply_start - r.reply_ready) for r in results if r.reply_start], 50),
        "wer": round(corpus_wer([r.reference for r in results], [" ".join(r.texts) for r in results]), 2),
    }


def main(args) -> int:
    from asr.audio import read_audio
    from asr.llm import load_llm
    from asr.rerank import Reranker
    from asr.streaming import StreamingRecognizer
    from asr.whisper.load import load_model
    from endpointing import EndpointConfig, Endpointer, default_endpointer
    from speechfront.responders import Echo
    from tts.synth import Synthesizer
    from tts.tagger import Tagger

    torch.set_num_threads(args.threads)
    items = [it for it in load_manifest(args.manifest) if split(it.id) == "test"][: args.clips]
    lm = load_model("tiny.en", "cpu")
    llm = load_llm(None, "cpu") if args.rerank or args.llm_tags else None
    reranker = Reranker(llm) if args.rerank else None
    responder = Echo(Tagger(lm=llm if args.llm_tags else None, use_llm=False))
    synth = Synthesizer(threads=args.threads)
    systems = {"two-pass": lambda: StreamingRecognizer(lm, reranker=reranker,
                                                       endpointer=default_endpointer("tiny.en"))}
    if not args.no_peer:
        systems["silence 800 ms"] = lambda: StreamingRecognizer(
            lm, reranker=reranker, endpointer=Endpointer(EndpointConfig(pause_only_ms=800.0), None))
    report: dict = {"clips": len(items), "rerank": reranker is not None, "tagger": "llm" if args.llm_tags else "rules"}
    for name, make in systems.items():
        results = []
        for k, it in enumerate(items):
            r = play_clip(it.id, read_audio(it.audio), it.text, make, responder, synth)
            results.append(r)
            if not args.quiet:
                lat = f"{1000 * (r.reply_start - r.end):.0f} ms" if r.reply_start is not None else "no reply"
                print(f"[{name} {k + 1}/{len(items)}] {it.id}: {lat} | {' / '.join(r.texts)}", file=sys.stderr)
        report[name] = summarize(results) | {"per_clip": [r.__dict__ for r in results]}
    _print(report)
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(report, indent=1))
    return 0


def _print(report: dict) -> None:
    print(f"{report['clips']} held-out dev clips through the fake devices in real time; rerank {report['rerank']}, "
          f"tagger {report['tagger']}")
    print("| system | turn P50 ms | turn P90 ms | final P50 / P90 ms | respond P50 ms | voice P50 ms | one turn | WER % |")
    print("|---|---|---|---|---|---|---|---|")
    for name, r in report.items():
        if isinstance(r, dict) and "turn_ms_p50" in r:
            print(f"| {name} | {r['turn_ms_p50']} | {r['turn_ms_p90']} | {r['final_ms_p50']} / {r['final_ms_p90']} "
                  f"| {r['respond_ms_p50']} | {r['voice_ms_p50']} | {r['one_turn']}/{r['clips']} | {r['wer']} |")
