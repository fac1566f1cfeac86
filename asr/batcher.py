"""FrameBatcher: frames of many streams in, batches for the recognizer out.

A batch is emitted when (a) the pending frames reach ``target_frames`` (sized
to fill the device), (b) a stream's pause reaches ``flush_pause_ms`` (a
possible end of speech: send everything pending now), (c) the oldest pending
frame has waited ``max_wait_ms`` on the audio clock, or (d) a stream ends.
Frames are never dropped, duplicated or reordered within a stream. A batch
that waited for a busy device may also ``take`` the frames still pending (the
replay harness does with several streams).
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

from .frames import Frame


FLUSHES = ("pause", "end")  # batches that may end a turn: a pass in flight gives way to them


@dataclass(frozen=True)
class BatcherConfig:
    target_frames: int = 32  # CPU: a few streams' worth; raise on a GPU
    flush_pause_ms: float = 30.0  # the end-pointing first pass proposes here: give it a fresh pass
    max_wait_ms: float = 200.0  # from the oldest frame's arrival: with 100 ms blocks, a pass every ~300 ms
    due: bool = True  # also cut when a stream's audio reaches the time its next word would commit


@dataclass(frozen=True)
class Batch:
    frames: dict[str, list[Frame]]  # stream -> its frames, in order
    reason: str  # "full", "pause", "deadline", "end" or "taken" (FrameBatcher.take)
    time: float  # audio-clock time at which the batch was emitted

    @property
    def size(self) -> int:
        return sum(len(f) for f in self.frames.values())


@dataclass
class FrameBatcher:
    config: BatcherConfig = field(default_factory=BatcherConfig)

    def __post_init__(self):
        self._pending: OrderedDict[str, list[Frame]] = OrderedDict()
        self._count = 0
        self._oldest: float | None = None  # arrival time of the oldest pending frame
        self._flushed_pause: set[str] = set()  # streams whose current pause already flushed
        self._fired: dict[str, float] = {}  # the due time each stream's last "due" batch met

    @property
    def pending(self) -> int:
        return self._count

    def add(self, frame: Frame, now: float, pause_ms: float = 0.0) -> Batch | None:
        """Queue a frame that arrived at audio time ``now``; maybe emit a batch.

        The deadline is not checked here: frames arrive in blocks, and a deadline met by a
        block's first frame would leave the rest of it for the next batch. The caller runs
        ``tick`` once a block's frames are all in."""
        self._pending.setdefault(frame.stream, []).append(frame)
        self._count += 1
        if self._oldest is None:
            self._oldest = now
        if frame.last:
            return self._emit("end", now)
        if pause_ms < self.config.flush_pause_ms:
            self._flushed_pause.discard(frame.stream)
        elif frame.stream not in self._flushed_pause:
            self._flushed_pause.add(frame.stream)  # once per pause, not every frame of it
            return self._emit("pause", now)
        if self._count >= self.config.target_frames:
            return self._emit("full", now)
        return None

    def tick(self, now: float, due: dict[str, float] | None = None) -> Batch | None:
        """Emit if the oldest pending frame has waited too long, or if a stream's pending audio
        reaches the time `due` gives for it (once per due time)."""
        for sid, t in (due if self.config.due and due else {}).items():
            frames = self._pending.get(sid)
            if frames and frames[-1].end >= t - 1e-6 and self._fired.get(sid) != t:
                self._fired[sid] = t
                return self._emit("due", now)
        # a tolerance: arrival times are sums of block lengths (0.3 - 0.1 < 0.2 in floats), and
        # a deadline missed by 1e-17 s waits for the next block, 100 ms late
        if self._oldest is not None and now - self._oldest >= self.config.max_wait_ms / 1000 - 1e-6:
            return self._emit("deadline", now)
        return None

    def flush(self, now: float) -> Batch | None:
        return self._emit("end", now) if self._count else None

    def take(self, now: float) -> Batch | None:
        """The pending frames, for a pass that is starting now: a batch that waited for a busy
        device leaves with the frames that arrived meanwhile (its pass would otherwise run on
        audio up to a deadline ago). Nothing pending: None."""
        return self._emit("taken", now) if self._count else None

    def _emit(self, reason: str, now: float) -> Batch:
        batch = Batch(dict(self._pending), reason, now)
        self._pending = OrderedDict()
        self._count = 0
        self._oldest = None
        return batch


def merge(a: Batch, b: Batch) -> Batch:
    """Two batches as one (frames that waited while the device was busy join the next pass).
    It keeps the first's time, and a pause or end reason from either: it may end a turn."""
    frames = {k: list(v) for k, v in a.frames.items()}
    for k, v in b.frames.items():
        frames.setdefault(k, []).extend(v)
    return Batch(frames, b.reason if b.reason in FLUSHES and a.reason not in FLUSHES else a.reason, a.time)
