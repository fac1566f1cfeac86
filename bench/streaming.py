"""Streaming benchmark: WER of committed words, word commit latency, streams.

Clips are laid end to end in ``streams`` lanes (one lane = one user talking
to the engine), each followed by ``gap`` seconds of silence; lanes start
staggered. Everything is replayed on the audio clock (bench/replay.py).

- WER: the committed words that start inside a clip's span, against its text.
- Commit latency: commit time minus the word's end, where the end comes from
  the offline recognizer's word alignment of the same clip (same model, full
  context), matched to the committed words by sequence alignment.
"""
from __future__ import annotations

import difflib
import itertools
import json
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from asr.audio import read_audio
from asr.batcher import BatcherConfig
from asr.events import Final
from asr.lookahead import parse_policy, word_key
from asr.recognizer import Recognizer, RecognizerConfig
from asr.streaming import StreamingConfig, StreamingRecognizer
from asr.whisper.load import load_model

from .manifest import Item, load_manifest
from .replay import StreamInput, replay
from .wer import corpus_wer, paired_difference


@dataclass
class Lane:
    audio: np.ndarray
    spans: list[tuple[Item, float, float]]  # item, start, end on the lane's clock


def build_lanes(items: list[Item], audio: dict[str, np.ndarray], streams: int, gap: float) -> list[Lane]:
    lanes: list[list[Item]] = [[] for _ in range(streams)]
    for i, it in enumerate(items):
        lanes[i % streams].append(it)
    out = []
    silence = np.zeros(int(gap * 16000), np.float32)
    for lane in lanes:
        parts, spans, t = [silence[:8000]], [], 0.5
        for it in lane:
            a = audio[it.id]
            spans.append((it, t, t + len(a) / 16000))
            parts += [a, silence]
            t += len(a) / 16000 + gap
        out.append(Lane(np.concatenate(parts), spans))
    return out


def reference_words(items: list[Item], audio: dict[str, np.ndarray], lm) -> dict[str, list]:
    rec = Recognizer(RecognizerConfig(device=str(lm.device)), loaded=lm)
    out = {}
    for i, t in rec._run((it.id, iter([audio[it.id]])) for it in items):
        out[i] = {"text": t.text, "words": [(word_key(w.word), w.end) for w in t.words]}
    return out


def evaluate(items: list[Item], lookahead: str, streams: int = 1, gap: float = 2.0, stagger: float = 0.7,
             config: StreamingConfig = StreamingConfig(), batcher: BatcherConfig = BatcherConfig(),
             lm=None, refs=None, audio=None, across_streams: bool = True, reranker=None,
             compute_scale: float = 1.0) -> dict:
    lm = lm or load_model("tiny.en", "cpu")
    audio = audio or {it.id: read_audio(it.audio) for it in items}
    refs = refs if refs is not None else reference_words(items, audio, lm)
    lanes = build_lanes(items, audio, streams, gap)
    rec = StreamingRecognizer(lm, config, lambda: parse_policy(lookahead, lm.name), reranker=reranker)
    inputs = [StreamInput(f"s{k}", lane.audio, start=k * stagger) for k, lane in enumerate(lanes)]
    result = replay(inputs, rec, batcher=batcher, across_streams=across_streams, compute_scale=compute_scale)
    words = {f"s{k}": [] for k in range(len(lanes))}
    finals = {f"s{k}": [] for k in range(len(lanes))}
    for e in result.events:
        if isinstance(e, Final):
            words[e.stream].extend(e.words)
            if e.words:
                finals[e.stream].append((e.words[0].start, e.text))
    hyps, texts, lat = {}, {}, []
    for k, lane in enumerate(lanes):
        sid, offset = f"s{k}", k * stagger
        for it, start, end in lane.spans:
            mine = [w for w in words[sid] if start - gap / 2 <= w.start < end + gap / 2]
            hyps[it.id] = "".join(w.w for w in mine).strip()
            texts[it.id] = " ".join(t for s0, t in finals[sid] if start - gap / 2 <= s0 < end + gap / 2)
            ref = refs[it.id]["words"]
            keys = [word_key(w.w) for w in mine]
            sm = difflib.SequenceMatcher(a=keys, b=[r[0] for r in ref], autojunk=False)
            for block in sm.get_matching_blocks():
                for j in range(block.size):
                    w, (_, ref_end) = mine[block.a + j], ref[block.b + j]
                    lat.append(w.committed_at - (offset + start + ref_end))
    wer = corpus_wer([it.text for it in items], [hyps[it.id] for it in items])
    lat_ms = np.array(lat) * 1000 if lat else np.array([np.nan])
    extra = {}
    if reranker is not None:
        waits = np.array(rec.rerank_waits_ms or [np.nan])
        extra = {"final_text_wer": round(corpus_wer([it.text for it in items], [texts[it.id] for it in items]), 2),
                 "rerank_wait_p50_ms": round(float(np.percentile(waits, 50)), 2),
                 "rerank_wait_p90_ms": round(float(np.percentile(waits, 90)), 2), "reranked_finals": len(rec.rerank_waits_ms)}
    return extra | {
        "lookahead": lookahead, "streams": streams, "clips": len(items), "wer": round(wer, 2),
        "latency_p50_ms": round(float(np.percentile(lat_ms, 50)), 1),
        "latency_p90_ms": round(float(np.percentile(lat_ms, 90)), 1),
        "words_timed": len(lat), "rtf": round(result.rtf, 3), "batches": result.batches,
        "batch_reasons": result.reasons, "frames_lost": result.frames_lost,
        "frames_duplicated": result.frames_duplicated, "frames_in_order": all(result.order_ok.values()),
        "passes": rec.passes, "preempted": rec.preempted, "preempt": config.preempt,
        "hyps": hyps,  # per clip, for comparing settings word by word (left out of the log line)
    }


def main(args) -> int:
    torch.set_num_threads(args.threads)
    items = load_manifest(args.manifest)[:: args.every][: args.limit]  # limit None keeps all
    lm = load_model(args.model, args.device, decoder=args.decoder, encoder=args.encoder)
    audio = {it.id: read_audio(it.audio) for it in items}
    print(f"{len(items)} clips, {sum(len(a) for a in audio.values()) / 16000 / 60:.1f} min of speech", file=sys.stderr)
    reranker = None
    if args.rerank:
        from asr.rerank import Reranker

        reranker = Reranker(device=args.device)
    refs = reference_words(items, audio, lm)
    offline = corpus_wer([it.text for it in items], [refs[it.id]["text"] for it in items])
    rows = []
    decode = replace(StreamingConfig().decode, beam_size=args.beam, best_of=args.beam)
    settings = list(itertools.product(
        args.lookahead, args.streams, [True, False] if args.compare_batching else [True],
        [True, False] if args.compare_preempt else [not args.no_preempt],
        [True, False] if args.compare_due else [not args.no_due]))
    for rep in range(args.repeat):  # interleaved: a slow spell of the machine hits every setting
        for spec, n, batched, preempt, due in settings:
            r = evaluate(items, spec, n, lm=lm, refs=refs, audio=audio, across_streams=batched,
                         config=StreamingConfig(preempt=preempt, decode=decode),
                         batcher=BatcherConfig(max_wait_ms=args.max_wait_ms, due=due), reranker=reranker,
                         compute_scale=args.compute_scale)
            r["batching"], r["due"], r["run"], r["compute_scale"] = batched, due, rep, args.compute_scale
            rows.append(r)
            print(json.dumps({k: v for k, v in r.items() if k != "hyps"}), file=sys.stderr)
    print(f"offline WER on these clips (same model, word keys): {offline:.2f} %")
    cols = f"{'lookahead':<26}{'streams':>8}{'batch':>7}{'preempt':>8}{'due':>5}{'WER %':>8}{'P50 ms':>9}{'P90 ms':>9}{'RTF':>7}{'lost':>6}{'dup':>5}"
    print(cols)
    for r in rows:
        print(_row(r))
    if args.repeat > 1:
        print(f"mean of {args.repeat} runs\n{cols}")
        setting = ("lookahead", "streams", "batching", "preempt", "due")
        for key in dict.fromkeys(tuple(r[k] for k in setting) for r in rows):
            print(_row(_mean([r for r in rows if tuple(r[k] for k in setting) == key])))
    _against(args.baseline, rows, [it.id for it in items], [it.text for it in items])
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"offline_wer": offline, "precision": lm.precision, "beam": args.beam,
                                                "runs": rows, "refs": {it.id: it.text for it in items}}, indent=1))
    return 0


def _against(baseline: str, rows: list[dict], ids: list[str], texts: list[str]) -> None:
    """Each run's word errors less those of the baseline's run of the same setting, with a 95 %
    bootstrap interval over clips: what a WER difference on this many clips can tell."""
    setting = ("streams", "batching", "preempt", "due", "run")
    base = {tuple(r[k] for k in setting): r for r in rows if r["lookahead"] == baseline}
    pairs = [(r, base[key]) for r in rows if r["lookahead"] != baseline and (key := tuple(r[k] for k in setting)) in base]
    if pairs:
        print(f"word errors against {baseline} in the same setting (95 % interval, bootstrap over clips):")
    for r, b in pairs:
        diff, lo, hi = paired_difference(texts, [r["hyps"][i] for i in ids], [b["hyps"][i] for i in ids])
        r["errors_vs_baseline"] = {"baseline": baseline, "diff": diff, "low": lo, "high": hi}
        print(f"  {r['lookahead']:<26}due {'on' if r['due'] else 'off':<4}{diff:+d} ({lo:+.0f} .. {hi:+.0f})")


def _row(r: dict) -> str:
    return (f"{r['lookahead']:<26}{r['streams']:>8}{'on' if r['batching'] else 'off':>7}"
            f"{'on' if r['preempt'] else 'off':>8}{'on' if r['due'] else 'off':>5}{r['wer']:>8.2f}"
            f"{r['latency_p50_ms']:>9.0f}{r['latency_p90_ms']:>9.0f}{r['rtf']:>7.3f}{r['frames_lost']:>6}"
            f"{r['frames_duplicated']:>5}")


def _mean(runs: list[dict]) -> dict:
    keys = ("wer", "latency_p50_ms", "latency_p90_ms", "rtf")
    return runs[0] | {k: float(np.mean([r[k] for r in runs])) for k in keys} | {
        "frames_lost": sum(r["frames_lost"] for r in runs), "frames_duplicated": sum(r["frames_duplicated"] for r in runs)}
