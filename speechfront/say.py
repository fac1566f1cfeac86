"""`speechfront say` (tagged text → speech) and `speechfront tag` (plain text → tagged text)."""
from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import numpy as np

log = logging.getLogger("speechfront")


def add_say_arguments(p) -> None:
    p.add_argument("text", help="text with optional [tags] or SSML; '-' reads standard input")
    p.add_argument("-o", "--output", type=Path, help="write a WAV file (16-bit PCM)")
    p.add_argument("--play", action="store_true", help="play through the default output device as it is made")
    p.add_argument("--output-device", help="sounddevice output device (name or index)")
    p.add_argument("--auto-tag", action="store_true", help="add stage directions first (the LLM tagger)")
    p.add_argument("--rules", action="store_true", help="with --auto-tag: the rule-based tagger, no LLM")
    p.add_argument("--sample-rate", type=int, help="resample the output (default: the voice's 22050 Hz)")
    p.add_argument("--voice", type=Path, help="a Piper .onnx voice (its .onnx.json beside it); default joe-medium")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=_seed, default=0,
                   help="seeds the voice's random draws: a text sounds the same on every run (default 0); "
                        "'none' draws afresh each time")


def _seed(arg: str) -> int | None:
    if arg.lower() == "none":
        return None
    if not arg.isdecimal():
        raise argparse.ArgumentTypeError(f"a seed is a whole number >= 0 or 'none', not {arg!r}")
    return int(arg)


def add_tag_arguments(p) -> None:
    p.add_argument("text", help="plain text; '-' reads standard input")
    p.add_argument("--rules", action="store_true", help="rule-based tagger only, no LLM")


def _text(arg: str) -> str:
    return sys.stdin.read() if arg == "-" else arg


def run_tag(args) -> int:
    from tts.tagger import Tagger

    print(Tagger(use_llm=not args.rules).tag(_text(args.text)))
    return 0


def run_say(args) -> int:
    from tts.playback import PlaybackError, play
    from tts.synth import Synthesizer
    from tts.voice import TTSUnavailable

    if not args.output and not args.play:
        print("speechfront say: give -o FILE.wav and/or --play", file=sys.stderr)
        return 2
    text = _text(args.text)
    if not text.strip():
        print("speechfront say: no text", file=sys.stderr)
        return 2
    if args.auto_tag:
        from tts.tagger import Tagger

        text = Tagger(use_llm=not args.rules).tag(text)
        print(text, file=sys.stderr)
    try:
        from tts.voice import PiperVoice

        voice = PiperVoice(args.voice, args.threads, args.seed) if args.voice else None
        synth = Synthesizer(voice, args.threads, seed=args.seed)
    except (TTSUnavailable, FileNotFoundError) as e:
        print(f"speechfront say: {e}", file=sys.stderr)
        return 2
    rate = args.sample_rate or synth.sample_rate
    made: list[np.ndarray] = []
    t0 = time.perf_counter()
    first = None

    def chunks():
        nonlocal first
        for c in synth.stream(text):
            a = c.audio
            if rate != synth.sample_rate and len(a):
                import soxr

                a = soxr.resample(a, synth.sample_rate, rate).astype(np.float32)
            first = first if first is not None else time.perf_counter() - t0
            made.append(a)
            yield a

    try:
        if args.play:
            play(chunks(), rate, args.output_device)
        else:
            for _ in chunks():
                pass
    except PlaybackError as e:
        print(f"speechfront say: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("speechfront say: interrupted", file=sys.stderr)
        if not made:
            return 130
    audio = np.concatenate(made) if made else np.zeros(0, np.float32)
    seconds = time.perf_counter() - t0
    if args.output:
        import soundfile as sf

        args.output.parent.mkdir(parents=True, exist_ok=True)
        sf.write(str(args.output), audio, rate, subtype="PCM_16")
    dur = len(audio) / rate
    print(f"{dur:.2f} s of speech at {rate} Hz{f' → {args.output}' if args.output else ''}; "
          f"first audio {1000 * (first or 0):.0f} ms, real-time factor {seconds / max(dur, 1e-9):.3f}", file=sys.stderr)
    return 0
