import json
import re

import numpy as np
import pytest
import soundfile as sf

from bench.wer import normalize
from speechfront.cli import DEMO_CLIP, main
from tests.conftest import DEMO_TEXT


@pytest.fixture(autouse=True)
def _share_model(monkeypatch, recognizer):
    # the CLI builds its own Recognizer; reuse the loaded model to keep tests fast
    import speechfront.transcribe as tr
    from asr.recognizer import Recognizer

    monkeypatch.setattr(tr, "Recognizer", lambda config: Recognizer(config, loaded=recognizer.lm))


def test_txt_to_stdout(capsys):
    assert main(["transcribe", str(DEMO_CLIP), "--device", "cpu"]) == 0
    assert capsys.readouterr().out.strip() == DEMO_TEXT


@pytest.mark.parametrize("fmt", ["json", "srt", "vtt", "txt"])
def test_formats_to_output_dir(tmp_path, fmt):
    assert main(["transcribe", str(DEMO_CLIP), "--format", fmt, "--output-dir", str(tmp_path), "--device", "cpu"]) == 0
    text = (tmp_path / f"beckett.{fmt}").read_text()
    if fmt == "json":
        d = json.loads(text)
        assert d["text"] == DEMO_TEXT and d["segments"][0]["words"] and d["nbest"][0]["text"] == DEMO_TEXT
    elif fmt in ("srt", "vtt"):
        # the cue starts with the first word, before the voice does (0.34 s), and ends after 8 s
        head = r"1\n00:00:00,(\d{3}) --> 00:00:0[89]," if fmt == "srt" else r"WEBVTT\n\n00:00:00\.(\d{3}) --> 00:00:0[89]\."
        m = re.match(head, text)
        assert m and int(m.group(1)) <= 340 and "Fail better." in text
    else:
        assert text == DEMO_TEXT + "\n"


def test_bad_file_reported_others_still_done(tmp_path, capsys):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio at all")
    code = main(["transcribe", str(bad), str(DEMO_CLIP), str(tmp_path / "missing.flac"), "--device", "cpu"])
    out, err = capsys.readouterr()
    assert code == 1
    assert DEMO_TEXT in out
    assert "bad.wav: cannot read audio" in err and "missing.flac: no such file" in err
    assert "2 of 3 inputs failed" in err
    assert "Traceback" not in err


def test_manifest_mode(tmp_path, demo_audio):
    sf.write(tmp_path / "quiet.wav", np.zeros(16000 * 3, np.float32), 16000)
    sf.write(tmp_path / "demo.flac", demo_audio, 16000)
    lines = [{"id": "a", "audio": "demo.flac", "text": DEMO_TEXT}, {"id": "b", "audio": "quiet.wav", "text": ""},
             {"id": "c", "audio": "gone.wav", "text": "x"}]
    m = tmp_path / "m.jsonl"
    m.write_text("".join(json.dumps(x) + "\n" for x in lines))
    out = tmp_path / "r.jsonl"
    assert main(["transcribe", "--manifest", str(m), "--out", str(out), "--device", "cpu"]) == 1
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert [r["id"] for r in rows] == ["a", "b", "c"]
    assert normalize(rows[0]["text"]) == normalize(DEMO_TEXT)
    assert rows[0]["segments"] and rows[0]["nbest"]
    assert rows[1]["text"] == "" and rows[1]["segments"] == []
    assert "no such file" in rows[2]["error"]


def test_usage_errors(capsys, tmp_path):
    assert main(["transcribe"]) == 2
    assert main(["transcribe", str(DEMO_CLIP), "--beam", "0"]) == 2
    assert main(["transcribe", "--manifest", str(tmp_path / "none.jsonl")]) == 2
    assert "manifest not found" in capsys.readouterr().err


def test_progress_bar_on_stderr(capsys):
    assert main(["transcribe", str(DEMO_CLIP), "--progress", "--device", "cpu"]) == 0
    assert "transcribing" in capsys.readouterr().err


def test_rerank_flags(capsys, tmp_path):
    assert main(["transcribe", str(DEMO_CLIP), "--device", "cpu", "--reranker", str(tmp_path / "none.gguf")]) == 2
    assert "no such model" in capsys.readouterr().err
    assert main(["transcribe", str(DEMO_CLIP), "--device", "cpu", "--rerank", "--format", "json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert normalize(d["text"]) == normalize(DEMO_TEXT)


@pytest.mark.parametrize("bench", ["offline", "streaming", "lookahead", "endpointing"])
def test_every_recognizer_benchmark_takes_the_precision_flags(bench):
    """The figures of a benchmark depend on the CPU precision load_model chose: each one that
    loads the recognizer lets the run ask for one, and rejects what load_model does not know."""
    from speechfront.cli import parser

    args = parser().parse_args(["bench", bench, "--encoder", "fp32", "--decoder", "fp16"])
    assert (args.encoder, args.decoder) == ("fp32", "fp16")
    assert parser().parse_args(["bench", bench]).encoder == "auto"
    with pytest.raises(SystemExit):
        parser().parse_args(["bench", bench, "--encoder", "fp8"])


@pytest.mark.parametrize("bench", ["offline", "streaming", "rerank"])
def test_a_benchmarks_beam_is_a_whole_number_from_one(bench):
    from speechfront.cli import parser

    assert parser().parse_args(["bench", bench, "--beam", "2"]).beam == 2
    for bad in ("0", "-1", "2.5"):
        with pytest.raises(SystemExit):
            parser().parse_args(["bench", bench, "--beam", bad])
