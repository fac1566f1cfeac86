"""`speechfront bench tts` on a few dev sentences: draws, the recordings' reference, reranking."""
import json

import pytest

import bench.tts as bench_tts
from speechfront.cli import main


def test_bench_tts_small(dev_manifest, tmp_path, capsys, monkeypatch):
    pytest.importorskip("piper", reason="the optional 'tts' extra (piper-tts) is not installed")
    monkeypatch.setattr(bench_tts, "REPLIES", bench_tts.REPLIES[:2])
    out = tmp_path / "tts.json"
    args = ["bench", "tts", "--manifest", str(dev_manifest), "--sentences", "3", "--draws", "2", "--rerank",
            "--quiet", "--json", str(out)]
    assert main(args) == 0
    r = json.loads(out.read_text())
    texts = [t for t, _ in bench_tts.recorded(dev_manifest, 3)]
    assert [x["text"] for x in r["rows"]["recorded"]] == texts
    for key in ("ours", "ours_styled", "piper-tts"):
        rows = r["rows"][key]
        assert [x["draw"] for x in rows] == [0, 0, 0, 1, 1, 1] and [x["text"] for x in rows] == texts * 2
        assert len(r[key]["wer_by_draw"]) == 2 and "wer_reranked" in r[key]
    # each draw is a fresh rendering: the voice's random durations differ
    ours = r["rows"]["ours"]
    assert any(abs(ours[i]["audio_s"] - ours[i + 3]["audio_s"]) > 1e-3 for i in range(3))
    assert r["recorded"]["sentences"] == 3 and "rtf" not in r["recorded"]
    assert r["replies"]["sentences"] == 2
    assert set(r["ours_styled"]["wer_by_style"]) == {"excited", "calm", "sad"}
    printed = capsys.readouterr().out
    assert "recorded" in printed and "reranked" in printed and "(draws " in printed
    assert main([*args[:5], "0", *args[6:]]) == 2
