"""LTTS benchmark: round-trip WER (LTTS → recognizer), real-time factor and time to first audio,
against piper-tts's own pipeline on the same voice and sentences, in the same run.

The voice's random draws move one pass over 100 sentences by a point of WER from draw to draw:
`draws` renders the sentences that many times, our voice seeded with the draw's number (piper-tts
draws afresh). The same recognizer on the dev set's own recordings of those sentences gives the
round trip's reference (what a human reader's audio loses), and `rerank` scores each transcript's
N-best with the LLM too, on the same audio."""
from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from .manifest import load_manifest
from .wer import corpus_wer

# one-sentence replies, the case the time-to-first-audio target is about
REPLIES = (
    "Sure, I can help with that.", "The meeting starts at ten tomorrow morning.", "I set a timer for five minutes.",
    "It is sunny and warm in Lisbon today.", "Your order has been shipped.", "Sorry, I did not catch that.",
    "Turning off the lights in the living room.", "You have three new messages.", "That sounds like a great plan!",
    "The train to Paris leaves from platform four.", "I added milk and eggs to your shopping list.",
    "Okay, calling your sister now.", "It will take about twenty minutes by bike.", "Good night, sleep well.",
    "The next song is by the Beatles.", "Your battery is at fifteen percent.", "I could not find that file.",
    "Congratulations on the new job!", "The pharmacy closes at six.", "Let me think about that for a second.",
)
# every style once in turn; emphasis goes on the sentence's longest word
STYLE_CYCLE = ("excited", "calm", "sad", "whisper", "slow", "fast", "loud", "soft", "emphasis")


def recorded(manifest: Path, n: int) -> list[tuple[str, Path]]:
    """`n` dev-set reference texts spread evenly over the read clips, markup removed, each with
    the dev clip that reads it."""
    items = [(" ".join(re.sub(r"<[^<>]*>", " ", it.text).split()), it.audio)
             for it in load_manifest(manifest) if it.kind == "read"]
    items = [(t, a) for t, a in items if len(t.split()) >= 3]
    step = max(len(items) // n, 1)
    return items[::step][:n]


def styled(text: str, style: str) -> str:
    if style != "emphasis":
        return f"[{style}] {text}"
    words = text.split()
    i = max(range(len(words)), key=lambda k: len(words[k].strip(",.!?;:\"'")))
    words[i] = f"[emphasis]{words[i]}[/emphasis]"
    return " ".join(words)


def timed(chunks) -> tuple[np.ndarray, float, float]:
    """Concatenated audio, seconds to the first chunk, seconds in all."""
    t0 = time.perf_counter()
    first, parts = None, []
    for c in chunks:
        first = time.perf_counter() - t0 if first is None else first
        parts.append(c)
    return (np.concatenate(parts) if parts else np.zeros(0, np.float32)), first or 0.0, time.perf_counter() - t0


def piper_peer(voice_path: Path):
    """piper-tts's own PiperVoice: its phonemizer, its ONNX session, default settings."""
    from piper import PiperVoice

    voice = PiperVoice.load(str(voice_path))
    return lambda text: (c.audio_float_array for c in voice.synthesize(text)), voice.config.sample_rate


def run(manifest: Path, n: int = 100, threads: int = 2, quiet: bool = False, asr_model: str = "tiny.en",
        draws: int = 1, rerank: bool = False) -> dict:
    import torch

    from asr.audio import read_audio
    from asr.recognizer import Recognizer, RecognizerConfig
    from tts.synth import Synthesizer, loopback
    from tts.voice import default_voice_path

    torch.set_num_threads(threads)
    pairs = recorded(manifest, n)
    recognizer = Recognizer(RecognizerConfig(model=asr_model, device="cpu", threads=threads))
    reranker = None
    if rerank:
        from asr.rerank import Reranker

        reranker = Reranker(device="cpu")

    def hear(audio: np.ndarray) -> dict:
        t = recognizer.transcribe(audio, 16000)
        return {"hyp": t.text, **({"hyp_reranked": reranker.rerank_transcript(t).text} if reranker else {})}

    synth = Synthesizer(threads=threads)
    peer, peer_rate = piper_peer(default_voice_path())
    peer("Hello.")  # its first onnxruntime run is slow too
    systems = {
        "ours": (lambda t: (c.audio for c in synth.stream(t)), synth.sample_rate),
        "piper-tts": (peer, peer_rate),
    }
    rows = {k: [] for k in ("ours", "piper-tts", "ours_styled", "replies", "replies_piper-tts", "replies_styled")}
    rows["recorded"] = [{"text": text, "input": str(path), "style": "", "draw": 0, **hear(read_audio(path))}
                        for text, path in tqdm(pairs, desc="dev recordings", disable=quiet, file=sys.stderr)]
    # (row key for dev sentences, for replies) of each (system, styled) pass
    keys = {("ours", False): ("ours", "replies"), ("piper-tts", False): ("piper-tts", "replies_piper-tts"),
            ("ours", True): ("ours_styled", "replies_styled")}
    work = ([(text, i, 0, d) for d in range(draws) for i, (text, _) in enumerate(pairs)]
            + [(text, i, 1, 0) for i, text in enumerate(REPLIES)])
    for text, i, group, draw in tqdm(work, desc="tts round trip", disable=quiet, file=sys.stderr):
        style = STYLE_CYCLE[i % len(STYLE_CYCLE)]
        synth.voice.seed = draw
        for system, with_style in keys:
            t = styled(text, style) if with_style else text
            make, rate = systems[system]
            audio, first, total = timed(make(t))
            rows[keys[system, with_style][group]].append({
                "text": text, "input": t, "style": style if with_style else "", "draw": draw,
                **hear(loopback(audio, rate)), "first_s": first, "synth_s": total, "audio_s": len(audio) / rate})
    return report(rows, asr_model)


def _wer(rs: list[dict], hyp: str = "hyp") -> float:
    return corpus_wer([r["text"] for r in rs], [r[hyp] for r in rs])


def report(rows: dict, asr_model: str) -> dict:
    out = {"asr_model": asr_model}
    for key, rs in rows.items():
        out[key] = {"sentences": len(rs), "wer": _wer(rs),
                    "wer_by_draw": [_wer([r for r in rs if r["draw"] == d]) for d in sorted({r["draw"] for r in rs})]}
        if "hyp_reranked" in rs[0]:
            out[key]["wer_reranked"] = _wer(rs, "hyp_reranked")
        if key == "recorded":  # the dev set's own audio: nothing synthesized
            continue
        first = np.array([r["first_s"] for r in rs]) * 1000
        out[key].update({"rtf": sum(r["synth_s"] for r in rs) / max(sum(r["audio_s"] for r in rs), 1e-9),
                         "first_audio_ms_p50": float(np.percentile(first, 50)),
                         "first_audio_ms_p90": float(np.percentile(first, 90))})
        if key.endswith("styled"):  # each style against the plain rendering of the same sentences and draw
            plain = {(r["text"], r["draw"]): r["hyp"] for r in rows[key.removesuffix("_styled")]}
            out[key]["wer_by_style"] = {
                s: {"styled": _wer(mine),
                    "plain": corpus_wer([r["text"] for r in mine], [plain[r["text"], r["draw"]] for r in mine])}
                for s in STYLE_CYCLE for mine in [[r for r in rs if r["style"] == s]] if mine}
    out["ratios_vs_piper_tts"] = {"rtf": out["ours"]["rtf"] / out["piper-tts"]["rtf"],
                                  "first_audio_p50": out["ours"]["first_audio_ms_p50"]
                                  / out["piper-tts"]["first_audio_ms_p50"],
                                  "reply_first_audio_p50": out["replies"]["first_audio_ms_p50"]
                                  / out["replies_piper-tts"]["first_audio_ms_p50"]}
    out["rows"] = rows
    return out


def main(args) -> int:
    if not Path(args.manifest).is_file():
        print(f"speechfront bench tts: no dev set at {args.manifest}", file=sys.stderr)
        return 2
    if args.draws < 1 or args.sentences < 1:
        print("speechfront bench tts: --draws and --sentences must be at least 1", file=sys.stderr)
        return 2
    res = run(args.manifest, args.sentences, args.threads, args.quiet, args.asr_model, args.draws, args.rerank)
    print(f"round trip through the recognizer {args.asr_model}" + (", then the LLM reranker" if args.rerank else ""))
    for key in ("recorded", "ours", "ours_styled", "piper-tts", "replies", "replies_styled", "replies_piper-tts"):
        r = res[key]
        line = f"{key:18s} sentences {r['sentences']:4d}  WER {r['wer']:5.2f} %"
        if len(r["wer_by_draw"]) > 1:
            line += " (draws " + " ".join(f"{w:.2f}" for w in r["wer_by_draw"]) + ")"
        if "wer_reranked" in r:
            line += f"  reranked {r['wer_reranked']:5.2f} %"
        if "rtf" in r:
            line += (f"  RTF {r['rtf']:.3f}  first audio P50 {r['first_audio_ms_p50']:.0f} ms"
                     f"  P90 {r['first_audio_ms_p90']:.0f} ms")
        print(line)
    print("WER by style, styled / plain on the same sentences: " + ", ".join(
        f"{k} {v['styled']:.1f}/{v['plain']:.1f}" for k, v in res["ours_styled"]["wer_by_style"].items()))
    q = res["ratios_vs_piper_tts"]
    print(f"ours / piper-tts: RTF ×{q['rtf']:.2f}, first audio P50 ×{q['first_audio_p50']:.2f} "
          f"(one-sentence replies ×{q['reply_first_audio_p50']:.2f})")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(res, indent=1))
    return 0
