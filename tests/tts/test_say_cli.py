import io

import numpy as np
import pytest
import soundfile as sf

from speechfront.cli import main


def test_say_writes_a_wav(tmp_path, synth, monkeypatch, capsys):
    import speechfront.say  # noqa: F401
    import tts.synth

    seeds = []

    def init(self, voice=None, threads=2, seed=0):
        seeds.append(seed)
        self.voice = synth.voice

    monkeypatch.setattr(tts.synth.Synthesizer, "__init__", init)
    out = tmp_path / "sub" / "hi.wav"
    assert main(["say", "Hello [pause 300ms] world. [whisper] Quietly.", "-o", str(out)]) == 0
    audio, sr = sf.read(out)
    assert sr == 22050 and 1.0 < len(audio) / sr < 5.0 and np.abs(audio).max() > 0.05
    assert "first audio" in capsys.readouterr().err
    assert main(["say", "Hello.", "-o", str(out), "--sample-rate", "16000"]) == 0
    assert sf.info(out).samplerate == 16000
    assert main(["say", "Hello.", "-o", str(out), "--seed", "none"]) == 0
    assert main(["say", "Hello.", "-o", str(out), "--seed", "3"]) == 0
    assert seeds == [0, 0, None, 3]
    with pytest.raises(SystemExit):
        main(["say", "Hello.", "-o", str(out), "--seed", "-1"])
    assert "whole number" in capsys.readouterr().err


def test_say_needs_a_destination_and_text(capsys, monkeypatch):
    assert main(["say", "Hello."]) == 2
    assert "-o FILE.wav" in capsys.readouterr().err
    monkeypatch.setattr("sys.stdin", io.StringIO("   "))
    assert main(["say", "-", "-o", "/tmp/never.wav"]) == 2
    assert "no text" in capsys.readouterr().err


def test_say_reports_a_missing_voice(tmp_path, capsys):
    pytest.importorskip("onnx", reason="the optional 'tts' extra is not installed")
    assert main(["say", "Hello.", "-o", str(tmp_path / "x.wav"), "--voice", str(tmp_path / "none.onnx")]) == 2
    assert "no voice model" in capsys.readouterr().err


def test_tag_rules(capsys, monkeypatch):
    assert main(["tag", "--rules", "Wow, we WON!"]) == 0
    assert capsys.readouterr().out.strip() == "[excited] Wow, we [emphasis]won[/emphasis]!"
    monkeypatch.setattr("sys.stdin", io.StringIO("Sorry, it failed."))
    assert main(["tag", "--rules", "-"]) == 0
    assert capsys.readouterr().out.strip() == "[sad] Sorry, it failed."
