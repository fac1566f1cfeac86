"""The microphone loop: microphone -> engine -> endpoint -> final -> responder -> LTTS -> speaker.

One thread runs the engine on the microphone's 30 ms frames (the same framer, pause tracker,
batcher and streaming recognizer as `speechfront stream`). A reply runs in a worker thread
(responder, then the synthesizer a phrase at a time, each phrase queued on the speaker as soon
as it is made), so the engine keeps listening while the system speaks.

Turn-taking: half duplex by default, the engine hears silence while the reply plays and for a
short tail after it. With barge-in, the raw microphone goes to a barge-in detector during the
reply, and the last few hundred milliseconds of it are held back: when the user interrupts,
playback stops, the held audio goes to the engine (the start of the new utterance) and the
microphone is live again; otherwise the held audio ages out as silence.
"""
from __future__ import annotations

import logging
import threading
from collections import deque
from dataclasses import dataclass, field, replace

import numpy as np

from asr.batcher import FLUSHES, BatcherConfig, FrameBatcher, merge
from asr.events import Endpoint, Event, Final
from asr.frames import FRAME_SAMPLES, Frame, Framer
from asr.pause import PauseConfig, PauseTracker

from .bargein import BargeIn, BargeInConfig

log = logging.getLogger("speechfront")
STREAM = "mic"


@dataclass(frozen=True)
class LoopConfig:
    barge_in: bool = False
    tail_ms: float = 250.0  # the engine hears silence this long after the reply (room echo)
    preroll_ms: float = 300.0  # with barge-in: microphone audio held back while the reply plays
    lead_ms: float = 90.0  # on a barge-in, the engine gets the held audio from this long before the speech
    quick_start: int = 5  # words of a reply rendered on their own first: the first audio comes sooner
    bargein: BargeInConfig = field(default_factory=BargeInConfig)
    pause: PauseConfig = field(default_factory=lambda: PauseConfig(single_thread=True))
    batcher: BatcherConfig = field(default_factory=BatcherConfig)


@dataclass
class Turn:
    index: int
    text: str
    final_at: float  # when the final text was ready (session clock, s)
    speech_end: float | None = None  # the end of speech the accepted endpoint was for
    prob: float | None = None  # the arbitrator's probability, if it decided
    reply: str = ""  # what the responder said (tags included)
    reply_ready: float | None = None  # when the responder had returned it
    reply_start: float | None = None  # when the first reply sample sounds
    reply_end: float | None = None
    interrupted_at: float | None = None  # barge-in: when playback stopped
    error: str | None = None  # the responder failed: why
    finished: bool = False  # the reply is over (spoken, cancelled or failed), or there is none


class Reply(threading.Thread):
    """Responder and synthesizer for one turn, queuing audio on the speaker as it is made."""

    def __init__(self, turn: Turn, responder, synth, devices, quick_start: int = 5):
        super().__init__(daemon=True, name=f"reply-{turn.index}")
        self.turn, self.responder, self.synth, self.devices = turn, responder, synth, devices
        self.quick_start = quick_start
        self.lock = threading.Lock()
        self.cancelled = False

    def run(self) -> None:
        try:
            self.turn.reply = self.responder(self.turn.text)
            self.turn.reply_ready = self.devices.now()
            for chunk in self.synth.stream(self.turn.reply, quick_start=self.quick_start):
                if not len(chunk.audio):
                    continue
                with self.lock:  # a cancel between synthesis and play must win
                    if self.cancelled:
                        return
                    start = self.devices.play(chunk.audio, chunk.sample_rate)
                if self.turn.reply_start is None:
                    self.turn.reply_start = start
            self.turn.reply_end = self.devices.playing_until()
        except Exception as e:  # a responder or voice failure ends this reply, not the session
            self.turn.error = str(e) or type(e).__name__
            log.debug("reply failed", exc_info=True)
        finally:
            self.turn.finished = True

    def cancel(self) -> float:
        with self.lock:
            self.cancelled = True
            return self.devices.stop_playback()


class Conversation:
    def __init__(self, devices, recognizer, responder=None, synth=None, config: LoopConfig = LoopConfig(),
                 on_event=None, on_turn=None, recorder=None):
        """responder: text -> reply text (tags allowed), or None to transcribe only.
        on_event(event) sees every engine event; on_turn(turn) each turn once its reply has
        started (or at once, without a responder)."""
        self.devices, self.rec, self.responder, self.synth = devices, recognizer, responder, synth
        self.config = config
        self.on_event, self.on_turn, self.recorder = on_event, on_turn, recorder
        self.turns: list[Turn] = []
        self.events: list[Event] = []
        self._mic = Framer(STREAM)  # raw microphone frames
        self._engine = Framer(STREAM)  # what the engine hears (gated)
        self._tracker = PauseTracker(config.pause)
        self._batcher = FrameBatcher(config.batcher)
        self._states: dict[int, object] = {}
        self._bargein = BargeIn(config.bargein, config.pause.vad) if config.barge_in else None
        self._held: deque[Frame] = deque()
        self._reply: Reply | None = None
        self._endpoint: Endpoint | None = None
        self._shown: set[int] = set()
        self._closing = False
        self._ready = None  # a batch waiting for its pass
        self._clock = 0.0  # capture time of the engine's last frame

    # -- the loop ------------------------------------------------------------------------

    def run(self) -> list[Turn]:
        """Until the microphone ends (EOFError from the device) or Ctrl-C; then the engine is
        flushed, so what was recognized is not lost. Device errors propagate."""
        self.devices.start()
        try:
            while True:
                try:
                    # everything captured so far goes in before a pass: while the engine was
                    # busy the microphone went on, and those frames belong in one pass, not many
                    self._take_in(0.05)
                except EOFError:
                    break
                self._run_ready()
                self._tick()
        except KeyboardInterrupt:
            self._closing = True  # flush what was heard, but start no reply
            if self._reply is not None:
                self._reply.cancel()
            self._flush()
            self._report_turns()
            raise
        finally:
            self.devices.close()
        self._flush()
        if self._reply is not None:
            self._reply.join()
        self._report_turns()
        return self.turns

    def _flush(self) -> None:
        self._release_held(real=0)
        for f in self._mic.close():  # the microphone's last part-frame, zero-padded
            self._feed(f)
        for g in self._engine.close():
            self._engine_frame(g)
        self._queue(self._batcher.flush(self._clock))
        self._run_ready()

    def _tick(self) -> None:
        self._queue(self._batcher.tick(self.devices.now(), self.rec.due()))
        self._run_ready()
        self._report_turns()

    def _queue(self, b) -> None:
        if b is not None:
            self._ready = b if self._ready is None else merge(self._ready, b)

    def _run_ready(self) -> None:
        b, self._ready = self._ready, None
        if b is not None:
            # it goes as the batcher cut it, even if it waited for a pass: one stream's waits are
            # short, and taking the frames heard since cost WER in the replay harness
            self._step(b)

    def _waiting(self) -> bool:
        """Asked by a pass between encoder blocks and decoding steps: take in what the microphone
        captured meanwhile; True once a pause batch waits (the pass then gives way to it)."""
        try:
            self._take_in(0.0)
        except EOFError:
            pass  # the loop sees it on its next read
        return self._ready is not None and self._ready.reason in FLUSHES

    # -- microphone frames -------------------------------------------------------------------

    def _take_in(self, timeout: float) -> None:
        """Hear every block captured so far, waiting up to `timeout` for the first."""
        block = self.devices.read(timeout=timeout)
        while block is not None:
            self._hear(block)
            block = self.devices.read(timeout=0)

    def _hear(self, block: np.ndarray) -> None:
        if self.recorder is not None:
            self.recorder.mic(block)
        for f in self._mic.push(block):
            if self.recorder is not None:
                self.recorder.speaker(self.devices.speaker.between(f.start, f.end), self.devices.speaker.rate)
            if not self._speaking(f):
                self._release_held(real=0)
                self._feed(f)
            elif self._bargein is None:
                self._feed(_silent(f))
            else:
                played = self.devices.speaker.between(f.start - self.config.bargein.delay_s, f.end)
                self._held.append(f)
                if self._bargein.update(f, played):
                    self._interrupt()
                    # the user's speech and a little before it; the older held audio is mostly echo
                    self._release_held(real=int((self._bargein.run + self.config.lead_ms) / 30))
                else:
                    keep = int(self.config.preroll_ms / 30)
                    while len(self._held) > keep:
                        self._feed(_silent(self._held.popleft()))

    def _speaking(self, f: Frame) -> bool:
        r = self._reply
        if r is None or r.cancelled or r.turn.reply_start is None or r.turn.reply_start > f.end:
            return False
        return r.is_alive() or f.start < self.devices.playing_until() + self.config.tail_ms / 1000

    def _release_held(self, real: int) -> None:
        """All held frames to the engine: the last `real` as heard, the others as silence."""
        while self._held:
            f = self._held.popleft()
            self._feed(f if len(self._held) < real else _silent(f))

    def _interrupt(self) -> None:
        r = self._reply
        r.turn.interrupted_at = r.cancel()
        self._bargein.reset()
        log.info("barge-in at %.2f s", r.turn.interrupted_at)

    def _feed(self, f: Frame) -> None:
        """One frame into the engine (renumbered: the engine's framer owns the indices)."""
        for g in self._engine.push(f.samples):
            self._engine_frame(g)

    def _engine_frame(self, g: Frame) -> None:
        if self.recorder is not None:
            self.recorder.heard(g.samples)
        st = self._states[g.index] = self._tracker.update(g)
        self._clock = g.end  # the batcher runs on capture time, as in the replay harness
        self._queue(self._batcher.add(g, g.end, st.pause_ms))

    # -- engine events -------------------------------------------------------------------------

    def _step(self, b) -> None:
        states = {STREAM: [self._states.pop(g.index) for g in b.frames[STREAM]]}
        events = [e for part, last in self.rec.split(b, states)
                  for e in self.rec.step(part, last, self.devices.now, self._waiting)]
        for e in events:
            self.events.append(e)
            if self.recorder is not None:
                self.recorder.event(e)
            if self.on_event is not None:
                self.on_event(e)
            if isinstance(e, Endpoint) and e.accepted:
                self._endpoint = e
            elif isinstance(e, Final):
                self._final(e)

    def _final(self, e: Final) -> None:
        ep, self._endpoint = self._endpoint, None
        if not e.text.strip():
            return
        turn = Turn(len(self.turns) + 1, e.text, e.t, ep.speech_end if ep else None, ep.prob if ep else None)
        self.turns.append(turn)
        if self._reply is not None and self._reply.is_alive():
            self._reply.turn.interrupted_at = self._reply.cancel()  # a newer turn replaces the old reply
        if self.responder is None or self.synth is None or self._closing:
            turn.finished = True
            self._reply = None
            return
        self._reply = Reply(turn, self.responder, self.synth, self.devices, self.config.quick_start)
        if self._bargein is not None:
            self._bargein.reset()
        self._reply.start()

    def _report_turns(self) -> None:
        for t in self.turns:
            if t.index not in self._shown and (t.reply_start is not None or t.finished):
                self._shown.add(t.index)
                if self.recorder is not None:
                    self.recorder.turn(t)
                if self.on_turn is not None:
                    self.on_turn(t)


def _silent(f: Frame) -> Frame:
    return replace(f, samples=np.zeros(FRAME_SAMPLES, np.float32))
