"""`speechfront transcribe`: files or a manifest in, transcripts out."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import soundfile as sf

from asr.audio import AudioError
from asr.recognizer import Recognizer, RecognizerConfig, with_options
from asr.results import Transcript

from .formats import render, to_dict


def add_arguments(p) -> None:
    p.add_argument("files", nargs="*", help="audio files (WAV, FLAC, OGG, MP3, ...)")
    p.add_argument("--format", choices=("txt", "json", "srt", "vtt"), default="txt")
    p.add_argument("--output-dir", type=Path, help="write FILE.FORMAT here instead of printing")
    p.add_argument("--manifest", type=Path, help="dev-set style JSONL of clips to transcribe")
    p.add_argument("--out", type=Path, help="with --manifest: result JSONL (default: stdout)")
    p.add_argument("--beam", type=int, default=5, help="beam size (default 5)")
    p.add_argument("--model", default="tiny.en", choices=("tiny.en", "base"))
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--threads", type=int, help="CPU threads (default: torch's choice)")
    p.add_argument("--batch", type=int, default=16, help="windows decoded together")
    p.add_argument("--no-words", action="store_true", help="skip word timestamps")
    add_rerank_arguments(p)
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress bar on stderr (default: on a terminal, for over 30 s of audio)")


def add_rerank_arguments(p) -> None:
    p.add_argument("--rerank", action="store_true", help="rerank the N-best with the bundled LLM (SmolLM2-135M)")
    p.add_argument("--reranker", metavar="PATH", help="rerank with this LLM instead: a .gguf file or a "
                   "Hugging Face checkpoint folder (implies --rerank)")


def make_reranker(args):
    """The reranker the arguments ask for, or None."""
    if not (args.rerank or args.reranker):
        return None
    from asr.llm import load_llm
    from asr.rerank import Reranker

    return Reranker(load_llm(args.reranker, "cpu" if args.device == "cpu" else "auto"))


def _duration(path: str) -> float:
    try:
        info = sf.info(path)
        return info.frames / info.samplerate
    except Exception:
        return 0.0  # the recognizer reports the real error in order


def run(args) -> int:
    if args.beam < 1:
        return _fail("--beam must be at least 1")
    if bool(args.manifest) == bool(args.files):
        return _fail("give audio files or --manifest, not both and not neither")
    config = with_options(
        RecognizerConfig(model=args.model, device=args.device, threads=args.threads, batch_size=args.batch,
                         word_timestamps=not args.no_words),
        beam_size=args.beam, best_of=args.beam,
    )
    if args.manifest:
        from bench.manifest import load_manifest

        try:
            items = load_manifest(args.manifest)
        except (OSError, ValueError) as e:
            return _fail(str(e))
        keys = [it.id for it in items]
        paths = [str(it.audio) for it in items]
    else:
        keys = paths = [str(f) for f in args.files]
    try:
        rec = Recognizer(config)
        reranker = make_reranker(args)
    except (FileNotFoundError, RuntimeError, ValueError) as e:
        return _fail(str(e))
    durations = {p: _duration(p) for p in paths}
    order = sorted(range(len(paths)), key=lambda i: durations[paths[i]])  # similar lengths batch well
    total = sum(durations.values())
    show = args.progress if args.progress is not None else (sys.stderr.isatty() and total > 30)
    from tqdm import tqdm

    bar = tqdm(total=round(total), unit="s", desc="transcribing", file=sys.stderr, disable=not show)
    out = open(args.out, "w") if args.manifest and args.out else sys.stdout
    failed = 0
    results: dict[int, object] = {}
    next_out = 0
    index_of = {}
    for i in order:
        index_of.setdefault(paths[i], []).append(i)
    try:
        for path, result in rec.transcribe_files([paths[i] for i in order], on_progress=lambda s: bar.update(round(s))):
            if reranker is not None and isinstance(result, Transcript):
                result = reranker.rerank_transcript(result)
            results[index_of[path].pop(0)] = result
            while next_out in results:  # write in input order as soon as possible
                failed += _emit(args, keys[next_out], paths[next_out], results.pop(next_out), out)
                next_out += 1
    except KeyboardInterrupt:
        bar.close()
        print("speechfront: interrupted", file=sys.stderr)
        return 130
    finally:
        bar.close()
        if out is not sys.stdout:
            out.close()
    if failed:
        print(f"speechfront: {failed} of {len(paths)} inputs failed", file=sys.stderr)
    return 1 if failed else 0


def _emit(args, key, path, result, out) -> int:
    if isinstance(result, AudioError):
        print(f"speechfront: error: {result}", file=sys.stderr)
        if args.manifest:
            out.write(json.dumps({"id": key, "error": str(result)}) + "\n")
        return 1
    if isinstance(result, Exception):
        raise result
    if args.manifest:
        out.write(json.dumps({"id": key} | to_dict(result), ensure_ascii=False) + "\n")
        out.flush()
    elif args.output_dir:
        args.output_dir.mkdir(parents=True, exist_ok=True)
        (args.output_dir / f"{Path(path).stem}.{args.format}").write_text(render(result, args.format))
    else:
        if len(args.files) > 1 and args.format == "txt":
            out.write(f"# {path}\n")
        out.write(render(result, args.format))
        out.flush()
    return 0


def _fail(msg: str) -> int:
    print(f"speechfront: error: {msg}", file=sys.stderr)
    return 2
