"""`speechfront listen` (the microphone loop) and `speechfront devices`."""
from __future__ import annotations

import logging
import sys
from pathlib import Path

from tts.voice import TTSUnavailable

from .devices import DeviceError

log = logging.getLogger("speechfront")


def add_listen_arguments(p) -> None:
    who = p.add_mutually_exclusive_group()
    who.add_argument("--print", action="store_true", help="transcribe only: no reply, no speech")
    who.add_argument("--respond-cmd", metavar="CMD",
                     help="reply with CMD's stdout (the final text on its stdin; stage directions allowed)")
    p.add_argument("--barge-in", action="store_true", help="let speech interrupt the reply (default: half duplex)")
    p.add_argument("--input-device", help="microphone: index or name (see `speechfront devices`)")
    p.add_argument("--output-device", help="speaker: index or name")
    p.add_argument("--input-file", type=Path,
                   help="play this audio file as the microphone, in real time; the speaker is captured, not played")
    p.add_argument("--record", type=Path, metavar="DIR", help="keep the session's audio and events under DIR")
    # the LLM is opt-in here: on 2 CPU cores it costs ~400 ms (rerank) and ~200 ms a sentence
    # (tags) of every turn's latency (`speechfront bench listen`), for no measurable WER gain
    p.add_argument("--rerank", action="store_true", help="rerank each final's N-best with the bundled LLM")
    p.add_argument("--llm-tags", action="store_true", help="the echo's stage directions from the LLM, not rules")
    p.add_argument("--model", default="tiny.en", choices=("tiny.en", "base"))
    p.add_argument("--vad", default="silero", choices=("silero", "energy"))
    p.add_argument("--threads", type=int, default=2)


def run_devices(args) -> int:
    from .devices import list_devices

    try:
        devices = list_devices()
    except DeviceError as e:
        print(f"speechfront: {e}", file=sys.stderr)
        return 1
    if not devices:
        print("no audio devices", file=sys.stderr)
        return 1
    for d in devices:
        mark = ("<" if d.default_in else " ") + (">" if d.default_out else " ")
        print(f"{mark} {d.index:3d}  {d.name}  (in {d.inputs}, out {d.outputs}, {d.rate:.0f} Hz)")
    print("< default input, > default output", file=sys.stderr)
    return 0


def build(args, say=print):
    """Load what the loop needs: (recognizer, responder, synthesizer); user errors raise."""
    import torch

    from asr.streaming import StreamingRecognizer
    from asr.whisper.load import load_model

    from .responders import Command, Echo

    torch.set_num_threads(args.threads)
    say(f"loading {args.model} …")
    lm = load_model(args.model, "cpu")
    llm = None
    echo = not args.print and not args.respond_cmd
    if args.rerank or (echo and args.llm_tags):
        try:
            from asr.llm import load_llm

            llm = load_llm(None, "cpu")
        except (FileNotFoundError, ImportError) as e:
            log.warning("no LLM (%s): finals are not reranked, the echo's stage directions come from rules", e)
    reranker = None
    if llm is not None and args.rerank:
        from asr.rerank import Reranker

        reranker = Reranker(llm)
    rec = StreamingRecognizer(lm, reranker=reranker)
    if args.print:
        return rec, None, None
    from tts.synth import Synthesizer
    from tts.tagger import Tagger

    responder = Command(args.respond_cmd) if args.respond_cmd else Echo(Tagger(lm=llm if args.llm_tags else None, use_llm=False))
    say("loading the voice …")
    return rec, responder, Synthesizer(threads=args.threads)


def run_listen(args) -> int:
    from .loop import Conversation, LoopConfig
    from .view import View

    view = View()
    try:
        if args.input_file:
            from asr.audio import AudioError, read_audio

            from .devices import FakeDevices

            try:
                devices = FakeDevices(read_audio(args.input_file))
            except AudioError as e:
                print(f"speechfront: error: {e}", file=sys.stderr)
                return 1
        else:
            from .devices import SoundDevices

            devices = SoundDevices(args.input_device, args.output_device, speaker=not args.print)
        rec, responder, synth = build(args, say=lambda s: print(s, file=sys.stderr))
    except DeviceError as e:
        print(f"speechfront: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("speechfront: interrupted while loading", file=sys.stderr)
        return 130
    except (FileNotFoundError, ValueError) as e:
        print(f"speechfront: error: {e}", file=sys.stderr)
        return 2
    except TTSUnavailable as e:
        print(f"speechfront: {e} (or use --print)", file=sys.stderr)
        return 2
    recorder = None
    if args.record:
        from .record import Recorder

        recorder = Recorder(args.record)
    from asr.pause import PauseConfig

    loop = Conversation(devices, rec, responder, synth, LoopConfig(barge_in=args.barge_in, pause=PauseConfig(args.vad, single_thread=True)),
                        on_event=view.event, on_turn=view.turn, recorder=recorder)
    print("listening (Ctrl-C to stop)" if not args.input_file else f"playing {args.input_file} as the microphone",
          file=sys.stderr)
    code = 0
    try:
        loop.run()
    except KeyboardInterrupt:
        view.note("stopped")
    except DeviceError as e:
        print(f"\nspeechfront: {e}", file=sys.stderr)
        code = 1
    finally:
        if recorder is not None:
            recorder.close()
            print(f"recorded to {recorder.dir}", file=sys.stderr)
    return code
