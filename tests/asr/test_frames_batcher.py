import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asr.batcher import Batch, BatcherConfig, FrameBatcher, merge
from asr.frames import FRAME_SAMPLES, Framer


@given(st.lists(st.integers(0, 3000), min_size=1, max_size=30))
def test_framer_cuts_exact_frames_and_loses_nothing(sizes):
    total = sum(sizes)
    x = np.arange(total, dtype=np.float32)
    fr = Framer("s")
    frames, at = [], 0
    for n in sizes:
        frames += fr.push(x[at:at + n])
        at += n
    frames += fr.close()
    assert all(len(f.samples) == FRAME_SAMPLES for f in frames)
    assert [f.index for f in frames] == list(range(len(frames)))
    assert frames[-1].last and not any(f.last for f in frames[:-1])
    joined = np.concatenate([f.samples for f in frames])
    assert np.array_equal(joined[:total], x)
    assert not joined[total:].any() and len(joined) - total < FRAME_SAMPLES or total % FRAME_SAMPLES == 0
    assert frames[0].start == 0.0 and frames[1:2] == [] or frames[1].start == pytest.approx(0.03)


def test_framer_resamples_and_rejects_use_after_close():
    fr = Framer("s", sample_rate=48000)
    frames = fr.push(np.zeros(48000, np.float32)) + fr.close()
    assert abs(len(frames) * FRAME_SAMPLES - 16000) <= FRAME_SAMPLES
    with pytest.raises(RuntimeError):
        fr.push(np.zeros(10))
    with pytest.raises(ValueError):
        Framer("s", 0)


# arrival patterns: (stream, samples in the block, pause after this block in ms)
# (stream, samples, pause ms, a pass starts and takes what is pending)
arrivals = st.lists(st.tuples(st.integers(0, 5), st.integers(1, 2000), st.sampled_from([0, 0, 0, 100, 250, 900]),
                              st.booleans()), min_size=1, max_size=120)


@settings(max_examples=150, deadline=None)
@given(arrivals, st.integers(1, 64), st.sampled_from([60.0, 210.0, 600.0]), st.sampled_from([0.0, 90.0, 300.0]),
       st.dictionaries(st.sampled_from([f"s{k}" for k in range(6)]), st.floats(0.0, 2.0), max_size=6))
def test_batcher_never_drops_duplicates_or_reorders(pattern, target, flush_pause, max_wait, due):
    fb = FrameBatcher(BatcherConfig(target_frames=target, flush_pause_ms=flush_pause, max_wait_ms=max_wait))
    framers: dict[str, Framer] = {}
    sent: dict[str, list[int]] = {}
    got: dict[str, list[int]] = {}
    now = 0.0

    def take(b):
        if b is None:
            return
        assert b.size > 0
        for s, frames in b.frames.items():
            got.setdefault(s, []).extend(f.index for f in frames)

    for stream, n, pause, starts in pattern:
        sid = f"s{stream}"
        fr = framers.setdefault(sid, Framer(sid))
        now += n / 16000 / 3  # streams interleave, the clock moves on
        for f in fr.push(np.zeros(n, np.float32)):
            sent.setdefault(sid, []).append(f.index)
            take(fb.add(f, now, pause))
        take(fb.tick(now, due))
        if starts:
            take(fb.take(now))
    for sid, fr in framers.items():  # every stream ends
        for f in fr.close():
            sent.setdefault(sid, []).append(f.index)
            take(fb.add(f, now, 0.0))
    take(fb.flush(now))
    assert fb.pending == 0
    assert got == sent  # same frames, each once, in order, per stream


def test_batcher_reasons():
    fb = FrameBatcher(BatcherConfig(target_frames=3, flush_pause_ms=200, max_wait_ms=100))
    fr = Framer("a")
    f = fr.push(np.zeros(480 * 10, np.float32))
    assert fb.add(f[0], 0.0) is None and fb.add(f[1], 0.03) is None
    assert fb.add(f[2], 0.06).reason == "full"
    assert fb.add(f[3], 0.09, pause_ms=250).reason == "pause"
    assert fb.add(f[4], 0.12, pause_ms=280) is None  # the same pause flushes once
    assert fb.tick(0.30).reason == "deadline"
    last = fr.close()[-1]
    assert fb.add(last, 0.4).reason == "end"


def test_merged_batches_keep_every_frame_and_a_pause_or_end():
    """A batch that waited for the device takes in the next; if either may end a turn, so may the
    merged one (a pass in flight gives way to it)."""
    f = Framer("a").push(np.zeros(480 * 4, np.float32))
    g = Framer("b").push(np.zeros(480 * 2, np.float32))
    deadline, pause = Batch({"a": f[:2]}, "deadline", 0.1), Batch({"a": f[2:], "b": g}, "pause", 0.2)
    m = merge(deadline, pause)
    assert [x.index for x in m.frames["a"]] == [0, 1, 2, 3] and len(m.frames["b"]) == 2
    assert m.reason == "pause" and m.time == 0.1
    assert merge(pause, deadline).reason == "pause" and merge(deadline, deadline).reason == "deadline"
    assert merge(Batch({}, "end", 0.3), pause).reason == "end"


def test_deadline_batch_takes_the_whole_block():
    """Frames that arrive together go together: the deadline does not split a block."""
    fb = FrameBatcher(BatcherConfig(target_frames=100, max_wait_ms=100))
    f = Framer("a").push(np.zeros(480 * 6, np.float32))
    for g in f[:3]:
        assert fb.add(g, 0.0) is None
    for g in f[3:]:
        assert fb.add(g, 0.15) is None  # past the deadline, but the block is not all in yet
    b = fb.tick(0.15)
    assert b.reason == "deadline" and [g.index for g in b.frames["a"]] == list(range(6))


def test_deadline_is_met_on_the_block_that_reaches_it():
    """0.3 - 0.1 is 0.19999999999999998 in floats: the deadline must still fire at 0.3, not a block later."""
    fb = FrameBatcher(BatcherConfig(target_frames=100, max_wait_ms=200))
    f = Framer("a").push(np.zeros(480 * 3, np.float32))
    fb.add(f[0], 0.1)
    assert fb.tick(0.2) is None
    fb.add(f[1], 0.2)
    fb.add(f[2], 0.3)
    assert fb.tick(0.3).reason == "deadline"


def test_take_hands_over_what_is_pending_and_restarts_the_deadline():
    fb = FrameBatcher(BatcherConfig(target_frames=100, max_wait_ms=200))
    assert fb.take(0.0) is None
    f = Framer("a").push(np.zeros(480 * 4, np.float32))
    fb.add(f[0], 0.1)
    fb.add(f[1], 0.1)
    b = fb.take(0.15)
    assert b.reason == "taken" and b.time == 0.15 and [g.index for g in b.frames["a"]] == [0, 1]
    assert fb.pending == 0 and fb.tick(0.3) is None  # the deadline went with the taken frames
    fb.add(f[2], 0.35)
    assert fb.tick(0.5) is None and fb.tick(0.55).reason == "deadline"
    assert merge(Batch({}, "deadline", 0.3), b).reason == "deadline"  # taken frames do not end a turn


def test_a_due_batch_goes_once_a_streams_audio_reaches_the_time_its_next_word_commits():
    fb = FrameBatcher(BatcherConfig(target_frames=100, max_wait_ms=1000))
    f = Framer("a").push(np.zeros(480 * 10, np.float32))  # frames end at 0.03, 0.06, ... 0.30 s
    for g in f[:5]:
        fb.add(g, 0.15)
    assert fb.tick(0.15, {"a": 0.2}) is None  # the audio reaches 0.15 s
    assert fb.tick(0.15, {"a": 0.15, "b": 0.1}).reason == "due"  # "b" has nothing pending
    for g in f[5:7]:
        fb.add(g, 0.21)
    b = fb.tick(0.21, {"a": 0.2})
    assert b.reason == "due" and b.time == 0.21 and [g.index for g in b.frames["a"]] == [5, 6]
    for g in f[7:]:
        fb.add(g, 0.3)
    assert fb.tick(0.3, {"a": 0.2}) is None  # once per due time: the pass that met it sets the next
    off = FrameBatcher(BatcherConfig(target_frames=100, max_wait_ms=1000, due=False))
    for g in f:
        off.add(g, 0.3)
    assert off.tick(0.3, {"a": 0.2}) is None
