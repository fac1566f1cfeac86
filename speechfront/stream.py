"""`speechfront stream`: replay files as live streams and print the events."""
from __future__ import annotations

import sys

import numpy as np

from asr.audio import AudioError, read_audio
from asr.events import Endpoint, Final, Partial, to_json
from asr.lookahead import parse_policy
from asr.pause import PauseConfig

from .transcribe import add_rerank_arguments, make_reranker


def add_arguments(p) -> None:
    p.add_argument("files", nargs="+", help="audio files; each is played as it would arrive live")
    p.add_argument("--lookahead", default="dynamic", help="fixed:MS[:once], dynamic (dynamic:learned:SCORE, dynamic:hand) or local-agreement (default dynamic)")
    p.add_argument("--streams", type=int, default=None,
                   help="concurrent streams (default: one per file); files are spread over them, repeated if needed")
    p.add_argument("--stagger", type=float, default=0.7, help="seconds between stream starts")
    p.add_argument("--json", action="store_true", help="events as JSON lines")
    p.add_argument("--vad", default="silero", choices=("silero", "energy"))
    p.add_argument("--model", default="tiny.en", choices=("tiny.en", "base"))
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--threads", type=int)
    add_rerank_arguments(p)


def run(args) -> int:
    import torch

    from asr.streaming import StreamingRecognizer
    from asr.whisper.load import load_model
    from bench.replay import StreamInput, replay

    try:
        parse_policy(args.lookahead, args.model)
    except ValueError as e:
        print(f"speechfront: error: {e}", file=sys.stderr)
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    audio = []
    for f in args.files:
        try:
            audio.append(read_audio(f))
        except AudioError as e:
            print(f"speechfront: error: {e}", file=sys.stderr)
            return 1
    n = args.streams or len(audio)
    if n < 1:
        print("speechfront: error: --streams must be at least 1", file=sys.stderr)
        return 2
    lanes = [[] for _ in range(n)]
    for i in range(max(n, len(audio))):
        lanes[i % n].append(audio[i % len(audio)])
    gap = np.zeros(16000 * 2, np.float32)
    inputs = [StreamInput(f"s{k}", np.concatenate([x for a in lane for x in (a, gap)]), start=k * args.stagger)
              for k, lane in enumerate(lanes)]
    try:
        lm = load_model(args.model, args.device)
    except (FileNotFoundError, RuntimeError) as e:
        print(f"speechfront: error: {e}", file=sys.stderr)
        return 2
    try:
        reranker = make_reranker(args)
    except (FileNotFoundError, RuntimeError, ValueError) as e:
        print(f"speechfront: error: {e}", file=sys.stderr)
        return 2
    rec = StreamingRecognizer(lm, policy_factory=lambda: parse_policy(args.lookahead, lm.name), reranker=reranker)
    result = replay(inputs, rec, PauseConfig(vad=args.vad), on_event=lambda e: _show(e, args.json))
    print(f"{n} streams, {result.audio_seconds:.1f} s of audio, compute {result.compute_seconds:.1f} s "
          f"(RTF {result.rtf:.3f}), {result.batches} batches {result.reasons}, "
          f"frames lost {result.frames_lost}, duplicated {result.frames_duplicated}", file=sys.stderr)
    return 0


def _show(e, as_json: bool) -> None:
    if as_json:
        print(to_json(e), flush=True)
    elif isinstance(e, Partial):
        print(f"[{e.stream} {e.t:7.2f}] {e.committed} \033[2m{e.tentative}\033[0m", flush=True)
    elif isinstance(e, Endpoint):
        why = f"p={e.prob:.2f}" if e.prob is not None else "pause limit"
        print(f"[{e.stream} {e.t:7.2f}] endpoint {'accepted' if e.accepted else 'rejected'} ({why})", flush=True)
    elif isinstance(e, Final):
        print(f"[{e.stream} {e.t:7.2f}] FINAL {e.text}", flush=True)
