"""`--record DIR`: a session's microphone audio, what the engine heard, the speaker and the events.

    DIR/session-YYYYmmdd-HHMMSS/
        mic.wav       the raw microphone, 16 kHz
        heard.wav     what the engine heard (silence where the microphone was gated);
                      `speechfront stream heard.wav` replays the session
        speaker.wav   what the speaker played, sample-aligned with mic.wav (at the speaker's rate)
        events.jsonl  the engine's events, times on the session clock
        turns.jsonl   one line per turn: text, reply, and its latencies
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import soundfile as sf

from asr.events import to_json
from asr.frames import SAMPLE_RATE


class Recorder:
    def __init__(self, root: Path):
        self.dir = Path(root) / time.strftime("session-%Y%m%d-%H%M%S")
        n = 1
        while self.dir.exists():
            n += 1
            self.dir = Path(root) / time.strftime(f"session-%Y%m%d-%H%M%S-{n}")
        self.dir.mkdir(parents=True)
        # written as they come, so a crash still leaves the audio
        self._mic = sf.SoundFile(str(self.dir / "mic.wav"), "w", SAMPLE_RATE, 1, "PCM_16")
        self._heard = sf.SoundFile(str(self.dir / "heard.wav"), "w", SAMPLE_RATE, 1, "PCM_16")
        self._speaker = None  # opened at the first audio: its rate is the device's
        self._events = open(self.dir / "events.jsonl", "w")
        self._turns = open(self.dir / "turns.jsonl", "w")

    def mic(self, block: np.ndarray) -> None:
        self._mic.write(block)

    def heard(self, samples: np.ndarray) -> None:
        self._heard.write(samples)

    def speaker(self, samples: np.ndarray, rate: int) -> None:
        if self._speaker is None:
            self._speaker = sf.SoundFile(str(self.dir / "speaker.wav"), "w", rate, 1, "PCM_16")
        self._speaker.write(samples)

    def event(self, e) -> None:
        self._events.write(to_json(e) + "\n")
        self._events.flush()

    def turn(self, t) -> None:
        self._turns.write(json.dumps(asdict(t), ensure_ascii=False) + "\n")
        self._turns.flush()

    def close(self) -> None:
        for f in (self._mic, self._heard, self._speaker, self._events, self._turns):
            if f is not None:
                f.close()
