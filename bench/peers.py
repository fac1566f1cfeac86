"""faster-whisper on the same tiny.en weights: the offline speed and WER bar (bench only)."""
from __future__ import annotations

import numpy as np


class FasterWhisper:
    def __init__(self, model: str = "tiny.en", threads: int = 2, compute_type: str = "int8", beam_size: int = 5):
        try:
            from faster_whisper import WhisperModel
        except ImportError:
            raise RuntimeError("faster-whisper is not installed: pip install 'speechfront[bench]'") from None
        from asr.whisper.load import model_files

        _, folder = model_files(model)
        if model != "tiny.en":
            raise ValueError("the faster-whisper peer reads the single-file tiny.en model only")
        self.model = WhisperModel(str(folder), device="cpu", compute_type=compute_type, cpu_threads=threads)
        self.beam_size = beam_size

    def transcribe(self, audio: np.ndarray) -> str:
        segments, _ = self.model.transcribe(audio, beam_size=self.beam_size, language="en")
        return "".join(s.text for s in segments).strip()
