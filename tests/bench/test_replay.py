"""The replay harness's worker, with a stand-in recognizer whose passes take a set time."""
import time
from types import SimpleNamespace

import numpy as np

from asr.pause import PauseConfig
from bench.replay import StreamInput, replay


class SlowPasses:
    """Records each pass's start on the audio clock and the frames it got; a pass sleeps
    `seconds` (times the replay's compute_scale on the audio clock) and asks `waiting` midway."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.passes: list[tuple[float, float, float, str]] = []  # (start, end of its last frame, batch time, reason)
        self.streams: dict[str, SimpleNamespace] = {}

    def due(self):
        return {}  # no policy: batches go by the batcher's own rules

    def split(self, batch, states):
        return [(batch, {s: v[-1] for s, v in states.items()})]

    def step(self, batch, pauses, now, waiting):
        start = now()
        for sid, frames in batch.frames.items():
            st = self.streams.setdefault(sid, SimpleNamespace(frames_seen=0, frame_indices_ok=True))
            st.frame_indices_ok &= [f.index for f in frames] == list(range(st.frames_seen, st.frames_seen + len(frames)))
            st.frames_seen += len(frames)
            self.passes.append((start, frames[-1].end, batch.time, batch.reason))
        time.sleep(self.seconds / 2)
        waiting()
        time.sleep(self.seconds / 2)
        return []


def test_a_pass_that_waited_for_the_device_takes_every_frame_heard_meanwhile():
    """Two streams, passes of 0.45 s on the audio clock against a batch every 0.3 s: the device
    is always behind. Each pass still runs on each stream's audio up to its start (the last 100
    ms block, less the framer's remainder), not up to the batch that waited; nothing is lost or
    repeated."""
    rng = np.random.default_rng(0)
    speech = [rng.normal(0, 0.1, 16000 * 6).astype(np.float32) for _ in range(2)]  # no pause flushes
    rec = SlowPasses(0.015)
    r = replay([StreamInput("s0", speech[0]), StreamInput("s1", speech[1], block=1000)], rec,
               PauseConfig(vad="energy"), compute_scale=30.0)
    assert r.frames_lost == 0 and r.frames_duplicated == 0 and all(r.order_ok.values())
    assert all(st.frame_indices_ok for st in rec.streams.values())
    starts = sorted({p[0] for p in rec.passes})
    assert len(starts) >= 5
    assert all(b - a >= 0.45 for a, b in zip(starts, starts[1:]))  # back to back: the device is the limit
    assert sum(start > t for start, _, t, _ in rec.passes) >= 8  # most batches waited
    last = max(starts)
    for start, last_end, _, _ in rec.passes:
        if start < last:
            assert start - 0.1 - 0.03 - 1e-6 <= last_end <= start + 1e-6, (start, last_end)


def test_one_streams_batch_goes_as_the_batcher_cut_it_even_if_it_waited():
    """One stream, the same slow device: a batch that waited is not topped up with the frames
    heard meanwhile (that cost WER on one stream and bought no latency); they go in the next
    batch, and nothing is lost or repeated."""
    speech = np.random.default_rng(0).normal(0, 0.1, 16000 * 6).astype(np.float32)
    rec = SlowPasses(0.015)
    r = replay([StreamInput("s0", speech)], rec, PauseConfig(vad="energy"), compute_scale=30.0)
    assert r.frames_lost == 0 and r.frames_duplicated == 0 and all(r.order_ok.values())
    assert rec.streams["s0"].frame_indices_ok
    waited = [(start, end) for start, end, t, _ in rec.passes[:-1] if start > t]
    assert len(waited) >= 4 and all(end <= start + 1e-6 for start, end in waited)
    # taking would end every such pass within a block and a frame of its start
    assert sum(end < start - 0.1 - 0.03 - 1e-6 for start, end in waited) >= 2, waited


def test_a_batch_that_did_not_wait_leaves_the_rest_to_the_batcher():
    """With compute off the clock each batch runs when the batcher emits it. A pause batch goes
    mid-block, at the frame where the pause reaches flush_pause_ms: the block's later frames
    are left for the next batch, not taken (they would shift every later deadline)."""
    rng = np.random.default_rng(1)
    audio = np.concatenate([rng.normal(0, 0.1, 16000 * 2), np.zeros(8000), rng.normal(0, 0.1, 16000)])
    rec = SlowPasses(0.0)
    r = replay([StreamInput("s0", audio.astype(np.float32))], rec, PauseConfig(vad="energy"), compute_scale=0.0)
    assert r.frames_lost == 0 and r.frames_duplicated == 0
    assert all(start == t for start, _, t, _ in rec.passes)
    pauses = [(start, end) for start, end, _, why in rec.passes if why == "pause"]
    assert pauses and all(end < start - 0.01 for start, end in pauses), pauses
