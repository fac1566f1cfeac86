"""Dynamic lookahead rules replayed on a log of passes (compute off the clock).

A real-time run costs ten minutes per setting on 233 clips. Here one replay,
with compute off the clock so its passes do not depend on the machine, runs
under a slow `log` policy and records every pass's tentative words. A dynamic
rule is then replayed over that log in well under a second: at each pass it
commits the leading words it accepts, and the words the log policy committed
bind it too (no later pass shows them). A reading it commits that differs from
the one the log policy ends with counts as changed: an estimate of the errors
a faster rule adds. Latency is the pass's audio time minus the word's end as
the log policy ends with it, with no compute (real time adds the passes).
What a rule commits also changes the later passes (committed words are forced
on the decoder), which the log cannot show: confirm a rule in real time.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch

from asr.audio import read_audio
from asr.lookahead import DynamicLookahead, TentativeWord, held_since, parse_policy
from asr.streaming import StreamingConfig, StreamingRecognizer
from asr.whisper.load import load_model

from .manifest import load_manifest
from .replay import StreamInput, replay
from .streaming import build_lanes

# a logged word: key, start, end, hold (None: not over), prob, open, attached, held since
Word = list


class _Recorder:
    """Wraps a policy: records each pass's uncommitted words, one list of passes per utterance."""

    def __init__(self, policy, log: list):
        self.policy, self.log = policy, log
        self.interval = policy.interval
        self.min_speech_s = getattr(policy, "min_speech_s", 0.0)
        self.name = policy.name
        self._base, self._prev = 0, []
        log.append([])

    def reset(self) -> None:
        self.policy.reset()
        self._base, self._prev = 0, []
        if self.log[-1]:
            self.log.append([])

    def commit(self, words: list[TentativeWord], audio_end: float, limit: int | None = None) -> int:
        since = held_since(self._prev, words, audio_end)  # as DynamicLookahead keeps it
        n = self.policy.commit(words, audio_end, limit)
        self.log[-1].append({"t": audio_end, "base": self._base, "n": n, "words": [
            [w.key, w.start, w.end, None if w.hold == float("inf") else w.hold, w.prob, w.open, w.attached, s]
            for w, s in zip(words, since)]})
        self._prev = [(w.key, s) for w, s in zip(words[n:], since[n:])]
        self._base += n
        return n


def record(lm, audio: np.ndarray, log_policy: str = "fixed:1500") -> list[list[dict]]:
    """The passes over one stream of audio (a lane of clips), one list per utterance."""
    log: list[list[dict]] = []
    rec = StreamingRecognizer(lm, StreamingConfig(), lambda: _Recorder(parse_policy(log_policy), log))
    replay([StreamInput("s0", audio)], rec, compute_scale=0.0)
    return [u for u in log if u]


def _accepts(rule: DynamicLookahead, w: Word, t: float) -> bool:
    key, start, end, hold, prob, opened, attached, since = w
    return not opened and hold is not None and rule.accepts(prob, t - since, t - hold)


def simulate(log: list[list[dict]], rule: DynamicLookahead) -> dict:
    """Replay `rule` over the logged passes: words read differently from the log policy's
    final reading, and commit latency (no compute) percentiles."""
    changed, lat = 0, []
    for passes in log:
        final: dict[int, Word] = {}  # index in the utterance -> the log policy's last reading
        for p in passes:
            for i, w in enumerate(p["words"]):
                final[p["base"] + i] = w
        done = 0

        def take(p, upto):
            nonlocal done, changed
            for k in range(done, upto):
                w = p["words"][k - p["base"]]
                changed += w[0] != final[k][0]
                lat.append(p["t"] - final[k][2])
            done = max(done, upto)

        for p in passes:
            words, base = p["words"], p["base"]
            if base <= done:
                n = done
                while n - base < len(words) and _accepts(rule, words[n - base], p["t"]):
                    n += 1
                while n > done and n - base < len(words) and words[n - base][6]:
                    n -= 1  # no half words: the next one is the rest of this one
                take(p, n)
            take(p, base + p["n"])  # the log policy's commits bind
        last = passes[-1]
        take(last, last["base"] + len(last["words"]))  # the final takes the rest
    ms = np.array(lat or [np.nan]) * 1000
    return {"words": len(lat), "changed": changed, "p50_ms": round(float(np.percentile(ms, 50)), 1),
            "p90_ms": round(float(np.percentile(ms, 90)), 1)}


def main(args) -> int:
    torch.set_num_threads(args.threads)
    rules = [(spec, parse_policy(spec)) for spec in args.lookahead]
    bad = [s for s, r in rules if not isinstance(r, DynamicLookahead) or r.min_speech_s > 0]
    if bad:  # the log keeps no speech onsets, so a start hold (MIN) cannot be replayed
        print(f"only dynamic rules without a start hold replay on a log: {', '.join(bad)}", file=sys.stderr)
        return 2
    if args.load:
        saved = json.loads(Path(args.load).read_text())
        log, log_policy = saved["log"], saved["log_policy"]
    else:
        items = load_manifest(args.manifest)[args.offset:: args.every][: args.limit]
        lm = load_model(args.model, "cpu", int8_decoder=args.decoder == "int8")
        print(f"recording {len(items)} clips under {args.log_policy}, compute off the clock", file=sys.stderr)
        lane = build_lanes(items, {it.id: read_audio(it.audio) for it in items}, 1, 2.0)[0]  # as bench streaming
        log, log_policy = record(lm, lane.audio, args.log_policy), args.log_policy
        if args.save:
            Path(args.save).parent.mkdir(parents=True, exist_ok=True)
            Path(args.save).write_text(json.dumps({"log_policy": log_policy, "log": log}))
    print(f"{sum(len(u) for u in log)} passes, {len(log)} utterances, logged under {log_policy}")
    print(f"{'rule':<40}{'words':>7}{'changed':>9}{'P50 ms':>8}{'P90 ms':>8}")
    for spec, rule in rules:
        r = simulate(log, rule)
        print(f"{spec:<40}{r['words']:>7}{r['changed']:>9}{r['p50_ms']:>8.0f}{r['p90_ms']:>8.0f}")
    return 0

