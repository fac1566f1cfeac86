"""`speechfront bench rerank` on a few dev clips: the report holds what the issue asks for."""
import json

from speechfront.cli import main


def test_bench_rerank_small(dev_manifest, tmp_path, capsys):
    out, cache = tmp_path / "rerank.json", tmp_path / "nbest.json"
    args = ["bench", "rerank", "--manifest", str(dev_manifest), "--limit", "12", "--quiet",
            "--nbest-cache", str(cache), "--json", str(out)]
    assert main(args) == 0
    r = json.loads(out.read_text())
    for part in ("held_out", "all"):
        w = r["wer"][part]
        assert w["oracle"] <= min(w["one_best"], w["reranked"], w["asr_scores_only"])
    assert r["latency"]["lists"] >= 1 and r["latency"]["speculative_ms"]["p50"] < r["latency"]["at_endpoint_ms"]["p50"]
    records = json.loads(cache.read_text())["records"]
    assert len(records) == 12 and all("lm:plain:smollm2" in x for x in records)
    assert main(args) == 0  # second run reuses the cached N-best lists and scores
    # other clips: the cache is collected again, not silently reused
    assert main([*args[:5], "6", *args[6:]]) == 0
    assert len(json.loads(cache.read_text())["records"]) == 6
