"""The `speechfront` command line."""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from . import listen, say, stream, transcribe

DEMO_CLIP = Path(__file__).parent / "data" / "beckett.wav"


def _beam(text: str) -> int:
    """A beam size: a whole number from 1 (0 would decode nothing)."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"a beam size is a whole number from 1, not {text!r}")
    return int(text)


def _preempt_arg(p) -> None:
    p.add_argument("--no-preempt", action="store_true",
                   help="a pass in flight runs to its end even when a pause or end batch is waiting")


def _precision_args(p) -> None:
    from asr.whisper.cpu_weights import DECODER_PRECISIONS
    from asr.whisper.load import ENCODER_PRECISIONS

    p.add_argument("--decoder", default="auto", choices=DECODER_PRECISIONS,
                   help="CPU: the decoder blocks' weights (auto: the faster of fp32 and fp16 here; the "
                        "vocabulary projection is int8 either way)")
    p.add_argument("--encoder", default="auto", choices=ENCODER_PRECISIONS,
                   help="CPU: the encoder's matrix products (auto: bf16 where the CPU has bf16 hardware)")


def _bench_offline_args(p) -> None:
    from bench.manifest import DEFAULT_MANIFEST

    p.add_argument("--manifest", type=Path, default=DEFAULT_MANIFEST, help="dev-set JSONL (default: the shared dev set)")
    p.add_argument("--limit", type=int, help="first N clips only")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--beam", type=_beam, default=5)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--model", default="tiny.en")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    p.add_argument("--words", action="store_true", help="also compute word timestamps (faster-whisper does not)")
    p.add_argument("--full-window", action="store_true", help="pad every window to 30 s like faster-whisper")
    _precision_args(p)
    p.add_argument("--no-peer", action="store_true", help="skip faster-whisper")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--json", default="bench-results/offline.json", help="where to write the JSON result")


def _bench_streaming_args(p) -> None:
    from asr.batcher import BatcherConfig
    from asr.streaming import StreamingConfig
    from bench.manifest import DEFAULT_MANIFEST

    p.add_argument("--manifest", type=Path, default=DEFAULT_MANIFEST)
    p.add_argument("--every", type=int, default=7, help="every Kth clip (default 7: about 100 clips)")
    p.add_argument("--limit", type=int, help="at most N clips")
    p.add_argument("--lookahead", nargs="+", default=["fixed:500", "fixed:1000", "dynamic", "local-agreement"])
    p.add_argument("--streams", nargs="+", type=int, default=[1])
    p.add_argument("--compare-batching", action="store_true", help="also run with one batcher per stream")
    p.add_argument("--max-wait-ms", type=float, default=BatcherConfig.max_wait_ms,
                   help="batcher deadline (default %(default)s)")
    _preempt_arg(p)
    p.add_argument("--compare-preempt", action="store_true", help="run every setting with and without preempting")
    p.add_argument("--no-due", action="store_true",
                   help="cut batches only by the batcher's own rules, not also when a word's commit is due")
    p.add_argument("--compare-due", action="store_true", help="run every setting with and without due batches")
    p.add_argument("--baseline", default="fixed:1000",
                   help="also report each run's word errors less this policy's, with a bootstrap interval")
    p.add_argument("--repeat", type=int, default=1, help="run every setting N times, interleaved (timing noise)")
    p.add_argument("--compute-scale", type=float, default=1.0,
                   help="multiplies each pass's compute time on the audio clock; 0: the words no longer depend on "
                        "the machine's speed or load (to compare engine changes; latencies then mean nothing)")
    p.add_argument("--rerank", action="store_true", help="rerank each final with the LLM, speculatively started")
    p.add_argument("--beam", type=_beam, default=StreamingConfig().decode.beam_size,
                   help="beam size of every pass but a final's (default %(default)s)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--model", default="tiny.en")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    _precision_args(p)
    p.add_argument("--json", default="bench-results/streaming.json")


def _bench_lookahead_args(p) -> None:
    from bench.manifest import DEFAULT_MANIFEST

    p.add_argument("--manifest", type=Path, default=DEFAULT_MANIFEST)
    p.add_argument("--every", type=int, default=3, help="every Kth clip (default 3: about 230 clips)")
    p.add_argument("--offset", type=int, default=0, help="starting from this clip (another third: 1)")
    p.add_argument("--limit", type=int, help="at most N clips")
    p.add_argument("--log-policy", default="fixed:1500", help="the slow policy the logged passes run under")
    p.add_argument("--lookahead", nargs="+", default=["dynamic"], help="dynamic rules to replay on the log")
    p.add_argument("--no-due", action="store_true", help="replay passes at the logged times only, without the "
                   "due passes the engine's batcher adds")
    p.add_argument("--save", type=Path, help="write the log here (JSON)")
    p.add_argument("--load", type=Path, nargs="+", help="replay the rules on saved logs instead of recording one")
    p.add_argument("--train", type=Path, help="fit a stability model on the log(s) and write it here "
                   "(asr/weights/stability-MODEL.json is the one `dynamic` uses)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--model", default="tiny.en")
    _precision_args(p)


def _bench_rerank_args(p) -> None:
    from bench.manifest import DEFAULT_MANIFEST

    p.add_argument("--manifest", type=Path, default=DEFAULT_MANIFEST)
    p.add_argument("--limit", type=int, help="first N clips only")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--beam", type=_beam, default=5)
    p.add_argument("--max-hypotheses", type=int, default=8, help="N-best entries the LM scores")
    p.add_argument("--prompt", default="plain", choices=("plain", "chat"))
    p.add_argument("--tune", action="store_true", help="tune the weights on the even clips, report the odd ones")
    p.add_argument("--model", default="tiny.en")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    p.add_argument("--nbest-cache", default="bench-results/nbest.json", help="reuse N-best lists from here")
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--json", default="bench-results/rerank.json")


def _bench_tts_args(p) -> None:
    from bench.manifest import DEFAULT_MANIFEST

    p.add_argument("--manifest", type=Path, default=DEFAULT_MANIFEST)
    p.add_argument("--sentences", type=int, default=100, help="dev-set sentences (default 100)")
    p.add_argument("--asr-model", default="tiny.en", choices=("tiny.en", "base"), help="the recognizer that listens")
    p.add_argument("--draws", type=int, default=1, help="render the dev sentences this many times (the voice is random)")
    p.add_argument("--rerank", action="store_true", help="also rerank each transcript's N-best with the LLM")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--json", default="bench-results/tts.json")


def _train_endpointer_args(p) -> None:
    from bench.manifest import DEFAULT_MANIFEST

    p.add_argument("--manifest", type=Path, default=DEFAULT_MANIFEST)
    p.add_argument("--limit", type=int, help="at most N training clips")
    p.add_argument("--commands", type=int, default=120, help="LTTS-rendered commands to add (0: none)")
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--held-out", type=float, default=0.15, help="fraction of cases for the held-out check")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--members", type=int, default=3, help="seeds per model, averaged in logit")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--model", default="tiny.en", choices=("tiny.en", "base"))
    p.add_argument("--dry-run", action="store_true", help="report only; do not write the weights")
    p.add_argument("--report", default="bench-results/endpointer-train.json")
    p.add_argument("--examples", help="also save the built examples here (.npz, ~0.6 GB for the dev set)")
    p.add_argument("--from-examples", help="fit on examples saved by --examples; skip the build")


def _bench_endpointing_args(p) -> None:
    from asr.batcher import BatcherConfig
    from bench.manifest import DEFAULT_MANIFEST
    from endpointing import EndpointConfig

    p.add_argument("--manifest", type=Path, default=DEFAULT_MANIFEST)
    p.add_argument("--limit", type=int, help="at most N held-out clips")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--no-smart-turn", action="store_true", help="skip pipecat's smart-turn peer")
    p.add_argument("--candidate-ms", type=float, default=EndpointConfig.candidate_ms,
                   help="first pass: the pause that proposes an endpoint (default %(default)s)")
    p.add_argument("--flush-pause-ms", type=float, default=BatcherConfig.flush_pause_ms,
                   help="the pause at which the batcher sends a fresh pass (default %(default)s)")
    _preempt_arg(p)
    _precision_args(p)
    p.add_argument("--json", default="bench-results/endpointing.json")
    p.add_argument("--decisions", help="also write every traced arbitrator decision here (JSON lines)")


def _bench_listen_args(p) -> None:
    from bench.manifest import DEFAULT_MANIFEST

    p.add_argument("--manifest", type=Path, default=DEFAULT_MANIFEST)
    p.add_argument("--clips", type=int, default=30, help="held-out dev clips (default 30)")
    p.add_argument("--rerank", action="store_true", help="rerank finals with the LLM, as `listen --rerank`")
    p.add_argument("--llm-tags", action="store_true", help="the echo's stage directions from the LLM")
    p.add_argument("--no-peer", action="store_true", help="skip the fixed-silence loop")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--json", default="bench-results/listen.json")


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="speechfront", description="Streaming speech front-end engine.")
    ap.add_argument("-v", "--verbose", action="store_true")
    sub = ap.add_subparsers(dest="command", required=True)
    transcribe.add_arguments(sub.add_parser("transcribe", help="transcribe audio files or a manifest"))
    stream.add_arguments(sub.add_parser("stream", help="replay files as live streams, print events"))
    say.add_say_arguments(sub.add_parser("say", help="speak text with [stage directions] or SSML"))
    say.add_tag_arguments(sub.add_parser("tag", help="add stage directions to plain text"))
    listen.add_listen_arguments(sub.add_parser("listen", help="the microphone loop: speak, see the words, hear a reply"))
    sub.add_parser("devices", help="list the audio devices")
    demo = sub.add_parser("demo", help="transcribe the bundled demo clip")
    demo.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    bench = sub.add_parser("bench", help="benchmarks against peers").add_subparsers(dest="bench", required=True)
    _bench_offline_args(bench.add_parser("offline", help="WER and throughput against faster-whisper"))
    _bench_streaming_args(bench.add_parser("streaming", help="streaming WER, commit latency, streams"))
    _bench_lookahead_args(bench.add_parser("lookahead", help="dynamic lookahead rules replayed on a log of passes"))
    _bench_rerank_args(bench.add_parser("rerank", help="WER with and without LLM reranking, oracle, latency"))
    _bench_tts_args(bench.add_parser("tts", help="LTTS round-trip WER, real-time factor, first audio"))
    _bench_endpointing_args(bench.add_parser("endpointing", help="cutoffs against endpoint latency, with peers"))
    _bench_listen_args(bench.add_parser("listen", help="turn latency of the microphone loop on dev clips"))
    _train_endpointer_args(sub.add_parser("train-endpointer", help="train the end-pointing arbitrator"))
    return ap


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="speechfront: %(message)s")
    if args.command == "transcribe":
        return transcribe.run(args)
    if args.command == "demo":
        ns = parser().parse_args(["transcribe", str(DEMO_CLIP), "--device", args.device])
        print(f"{DEMO_CLIP.name} (Samuel Beckett, read; from the moonshine-voice package, MIT):", file=sys.stderr)
        return transcribe.run(ns)
    if args.command == "say":
        return say.run_say(args)
    if args.command == "tag":
        return say.run_tag(args)
    if args.command == "listen":
        return listen.run_listen(args)
    if args.command == "devices":
        return listen.run_devices(args)
    if args.command == "stream":
        return stream.run(args)
    if args.command == "bench" and args.bench == "streaming":
        from bench.streaming import main as streaming

        return streaming(args)
    if args.command == "bench" and args.bench == "lookahead":
        from bench.passlog import main as lookahead

        return lookahead(args)
    if args.command == "bench" and args.bench == "rerank":
        from bench.rerank import main as rerank

        return rerank(args)
    if args.command == "bench" and args.bench == "tts":
        from bench.tts import main as tts

        return tts(args)
    if args.command == "train-endpointer":
        from endpointing.train import main as train

        return train(args)
    if args.command == "bench" and args.bench == "endpointing":
        from bench.endpointing import main as endpointing

        return endpointing(args)
    if args.command == "bench" and args.bench == "listen":
        from bench.listen import main as listen_bench

        return listen_bench(args)
    if args.command == "bench" and args.bench == "offline":
        from bench.offline import main as offline

        return offline(args)
    return 2


if __name__ == "__main__":
    sys.exit(main())
