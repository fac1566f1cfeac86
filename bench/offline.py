"""Offline benchmark: our recognizer against faster-whisper on the same clips.

Both run on the same machine, one after the other, with the same thread count
and beam size; WER is scored the same way for both. Figures are reported as a
throughput ratio so that a noisy shared machine affects both sides alike.
"""
from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch

from asr.audio import read_audio
from asr.recognizer import Recognizer, RecognizerConfig, with_options

from .manifest import Item, load_manifest
from .wer import corpus_wer


@dataclass
class SystemResult:
    name: str
    wer: float
    seconds: float
    audio_seconds: float
    hypotheses: dict
    precision: dict = field(default_factory=dict)  # ours on the CPU: what load_model's "auto" chose

    @property
    def rtf(self) -> float:
        return self.seconds / self.audio_seconds


def run_ours(items: list[Item], config: RecognizerConfig, progress=None) -> SystemResult:
    rec = Recognizer(config)
    ordered = sorted(items, key=lambda it: it.duration)  # similar lengths share a batch
    by_path = {str(it.audio): it for it in ordered}
    hyps = {}
    start = time.perf_counter()
    for path, result in rec.transcribe_files([str(it.audio) for it in ordered]):
        if isinstance(result, Exception):
            raise result
        hyps[by_path[path].id] = result.text
        if progress:
            progress(by_path[path].duration)
    seconds = time.perf_counter() - start
    return replace(_score("speechfront", items, hyps, seconds), precision=rec.lm.precision)


def run_faster_whisper(items: list[Item], threads: int, beam: int, progress=None) -> SystemResult:
    from .peers import FasterWhisper

    fw = FasterWhisper(threads=threads, beam_size=beam)
    audio = {it.id: read_audio(it.audio) for it in items}  # decoding files is not what we measure
    hyps = {}
    start = time.perf_counter()
    for it in items:
        hyps[it.id] = fw.transcribe(audio[it.id])
        if progress:
            progress(it.duration)
    seconds = time.perf_counter() - start
    return _score("faster-whisper int8", items, hyps, seconds)


def _score(name, items, hyps, seconds) -> SystemResult:
    wer = corpus_wer([it.text for it in items], [hyps[it.id] for it in items])
    return SystemResult(name, wer, seconds, sum(it.duration for it in items), hyps)


def main(args) -> int:
    from tqdm import tqdm

    torch.set_num_threads(args.threads)
    items = load_manifest(args.manifest, args.limit)
    total = sum(it.duration for it in items)
    config = with_options(
        RecognizerConfig(model=args.model, device=args.device, threads=args.threads, batch_size=args.batch,
                         word_timestamps=args.words, decoder=args.decoder, encoder=args.encoder),
        beam_size=args.beam, best_of=args.beam,
    )
    if args.full_window:
        config = replace(config, full_window=True)
    results = []
    for label, fn in (("speechfront", lambda p: run_ours(items, config, p)),
                      ("faster-whisper", lambda p: run_faster_whisper(items, args.threads, args.beam, p))):
        if label == "faster-whisper" and args.no_peer:
            continue
        with tqdm(total=round(total), unit="s audio", desc=label, file=sys.stderr, disable=args.quiet) as bar:
            results.append(fn(lambda d: bar.update(round(d))))
    print(f"{len(items)} clips, {total / 60:.1f} min of audio, {args.threads} threads, beam {args.beam}")
    print(f"{'system':<22}{'WER %':>8}{'seconds':>10}{'RTF':>8}")
    for r in results:
        print(f"{r.name:<22}{r.wer:>8.2f}{r.seconds:>10.1f}{r.rtf:>8.3f}")
    out = {"manifest": str(args.manifest), "clips": len(items), "audio_seconds": total, "threads": args.threads,
           "beam": args.beam, "config": {"batch": args.batch, "words": args.words, "decoder": args.decoder,
                                         "full_window": args.full_window},
           "systems": [{k: v for k, v in asdict(r).items() if k != "hypotheses"} | {"rtf": r.rtf} for r in results]}
    if len(results) == 2:
        ours, peer = results
        out["throughput_ratio"] = peer.seconds / ours.seconds
        out["wer_delta"] = ours.wer - peer.wer
        print(f"throughput vs faster-whisper: {out['throughput_ratio']:.2f}x; WER difference {out['wer_delta']:+.2f}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        out["hypotheses"] = {r.name: r.hypotheses for r in results}
        Path(args.json).write_text(json.dumps(out, indent=1))
        print(f"wrote {args.json}")
    return 0
