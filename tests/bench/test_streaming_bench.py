"""The streaming benchmark end to end on two dev clips: policies compared in one run."""
import json

import bench.streaming
from speechfront.cli import main


def test_bench_streaming_reports_each_policy(dev_manifest, tmp_path, capsys, monkeypatch):
    out = tmp_path / "s.json"
    beams, evaluate = [], bench.streaming.evaluate

    def spy(*args, config, **kw):
        beams.append((config.decode.beam_size, config.decode.best_of))
        return evaluate(*args, config=config, **kw)

    monkeypatch.setattr(bench.streaming, "evaluate", spy)
    args = ["bench", "streaming", "--manifest", str(dev_manifest), "--every", "40", "--limit", "2",
            "--lookahead", "dynamic", "fixed:1000", "--beam", "2", "--json", str(out)]
    assert main(args) == 0
    report = json.loads(out.read_text())
    assert beams == [(2, 2), (2, 2)] and report["beam"] == 2
    assert [r["lookahead"] for r in report["runs"]] == ["dynamic", "fixed:1000"]
    for r in report["runs"]:
        assert r["frames_lost"] == r["frames_duplicated"] == 0 and r["frames_in_order"]
        assert r["clips"] == 2 and r["words_timed"] > 0 and r["wer"] < 30.0
        assert r["latency_p50_ms"] <= r["latency_p90_ms"]
    # fixed:1000 commits a word only once 1 s of audio follows it
    assert report["runs"][1]["latency_p50_ms"] >= 1000
    out = capsys.readouterr().out
    assert "offline WER" in out and "word errors against fixed:1000" in out
    against = report["runs"][0]["errors_vs_baseline"]
    assert against["baseline"] == "fixed:1000" and against["low"] <= against["diff"] <= against["high"]
    assert "errors_vs_baseline" not in report["runs"][1]
