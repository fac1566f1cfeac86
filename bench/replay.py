"""Replay audio on the audio clock, as if it arrived in real time.

Frames of every stream arrive when their last sample would have been
captured (streams may start at staggered times). The batcher decides when a
batch goes; one worker (the device) runs batches one at a time: a batch starts
when it is emitted or when the worker is free, whichever is later, and its
measured compute time is added to the clock. Frames that arrive while the
worker is busy join the next pass. With several streams a batch that waited
for the worker takes every frame that has arrived by its start
(FrameBatcher.take), else each pass would run on audio up to a deadline ago
and the streams' leftovers would queue for passes of their own; one stream's
batch goes as the batcher cut it (taking cost WER there and bought no
latency). Once a pause or end batch is waiting, the pass in flight stops at
its next encoder block or decoding step (StreamingConfig.preempt). Every
event carries the time it would reach the user. A run over a file is
therefore fast and honest about latency; with compute_scale=0 its decisions
do not depend on the machine.
"""
from __future__ import annotations

import heapq
import time
from dataclasses import dataclass, field

import numpy as np

from asr.batcher import FLUSHES, Batch, BatcherConfig, FrameBatcher, merge
from asr.events import Event
from asr.frames import Framer
from asr.pause import PauseConfig, PauseState, PauseTracker
from asr.streaming import StreamingRecognizer


@dataclass(frozen=True)
class StreamInput:
    id: str
    audio: np.ndarray  # 16 kHz mono float32
    start: float = 0.0  # when the stream starts on the shared clock (s)
    block: int = 1600  # samples per arriving block (100 ms), as a capture callback delivers


@dataclass
class ReplayResult:
    events: list[Event]
    compute_seconds: float
    audio_seconds: float
    batches: int
    frames_sent: dict[str, int]
    frames_seen: dict[str, int]
    order_ok: dict[str, bool]
    reasons: dict[str, int] = field(default_factory=dict)

    @property
    def frames_lost(self) -> int:
        return sum(max(0, self.frames_sent[s] - self.frames_seen.get(s, 0)) for s in self.frames_sent)

    @property
    def frames_duplicated(self) -> int:
        return sum(max(0, self.frames_seen.get(s, 0) - self.frames_sent[s]) for s in self.frames_sent)

    @property
    def rtf(self) -> float:
        return self.compute_seconds / self.audio_seconds if self.audio_seconds else 0.0


def replay(inputs: list[StreamInput], recognizer: StreamingRecognizer, pause: PauseConfig = PauseConfig(),
           batcher: BatcherConfig = BatcherConfig(), on_event=None, across_streams: bool = True,
           compute_scale: float = 1.0) -> ReplayResult:
    """Run the streams through framer -> pause tracker -> batcher -> recognizer.

    compute_scale multiplies the measured compute time before it is added to the clock: 0 makes
    the replay independent of the machine's speed and load (what tests of the words need).

    across_streams=False gives each stream a batcher of its own: the same flush
    rules, but one stream per pass (what a one-model-per-stream engine does).
    """
    framers = {s.id: Framer(s.id) for s in inputs}
    trackers = {s.id: PauseTracker(pause) for s in inputs}
    batchers = {(s.id if not across_streams else "*"): FrameBatcher(batcher) for s in inputs}
    arrivals = []  # (time, seq, stream, block or None for the end)
    seq = 0
    for s in inputs:
        for i in range(0, len(s.audio), s.block):
            chunk = s.audio[i:i + s.block]
            arrivals.append((s.start + (i + len(chunk)) / 16000, seq, s.id, chunk))
            seq += 1
        arrivals.append((s.start + len(s.audio) / 16000, seq, s.id, None))
        seq += 1
    heapq.heapify(arrivals)

    # One timeline: frames arrive and go through framer, pause tracker and batcher; one worker
    # runs the batches, oldest first, each when it is emitted or when the worker is free,
    # merging those that wait.
    frame_state: dict[tuple[str, int], PauseState] = {}
    sent = {s.id: 0 for s in inputs}
    ready: dict[str, Batch] = {}  # per batcher key, waiting for the worker
    events: list[Event] = []
    free_at = 0.0
    compute = 0.0
    batches = 0
    reasons: dict[str, int] = {}

    def queue(key: str, b: Batch | None) -> None:
        if b is not None:
            ready[key] = merge(ready[key], b) if key in ready else b

    def advance(until: float) -> None:  # everything that has arrived by `until`
        while arrivals and arrivals[0][0] <= until:
            now, _, sid, chunk = heapq.heappop(arrivals)
            key = sid if not across_streams else "*"
            frames = framers[sid].push(chunk) if chunk is not None else framers[sid].close()
            for f in frames:
                sent[sid] += 1
                state = frame_state[(sid, f.index)] = trackers[sid].update(f)
                queue(key, batchers[key].add(f, now, state.pause_ms))
            due = recognizer.due()
            for k, fb in batchers.items():
                queue(k, fb.tick(now, due))
            if not arrivals:
                for k, fb in batchers.items():
                    queue(k, fb.flush(now))

    def run(key: str, start: float) -> None:
        nonlocal free_at, compute, batches
        b = ready.pop(key)
        reasons[b.reason] = reasons.get(b.reason, 0) + 1
        # with several streams a batch that waited for the worker leaves with the frames heard
        # meanwhile (one that did not leaves the rest of its block to the deadline, as the
        # batcher decided); one stream's waits are short and its cuts are worth keeping
        extra = batchers[key].take(start) if start > b.time and len(inputs) > 1 else None
        b = merge(b, extra) if extra is not None else b
        t0 = time.perf_counter()
        off = 0.0  # seconds spent hearing frames during the pass: the front end is not timed

        def clock() -> float:
            return start + compute_scale * (time.perf_counter() - t0 - off)

        def waiting() -> bool:  # a pause or end batch has reached the device's queue by now
            nonlocal off
            t = time.perf_counter()
            advance(clock())
            off += time.perf_counter() - t
            return any(w.reason in FLUSHES for w in ready.values())

        # the batch's own frames only, not later arrivals
        states = {s: [frame_state.pop((s, f.index)) for f in fs] for s, fs in b.frames.items()}
        out = []
        for part, last in recognizer.split(b, states):
            out += recognizer.step(part, last, clock, waiting)
        spent = time.perf_counter() - t0 - off
        compute += spent
        free_at = start + compute_scale * spent
        batches += 1
        for e in out:
            events.append(e)
            if on_event:
                on_event(e)

    while ready or arrivals:
        if ready:
            key = min(ready, key=lambda k: ready[k].time)
            start = max(ready[key].time, free_at)
            if not arrivals or start < arrivals[0][0]:
                run(key, start)
                continue
        advance(arrivals[0][0])
    seen = {s: st.frames_seen for s, st in recognizer.streams.items()}
    order = {s: st.frame_indices_ok for s, st in recognizer.streams.items()}
    audio = sum(len(s.audio) for s in inputs) / 16000
    return ReplayResult(events, compute, audio, batches, sent, seen, order, reasons)
