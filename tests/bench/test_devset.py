"""Accuracy on real recorded speech: a spread of the dev set, every kind of clip."""

from bench.manifest import load_manifest
from bench.offline import run_ours


def test_dev_subset_wer(dev_manifest):
    from asr.recognizer import RecognizerConfig

    items = load_manifest(dev_manifest)
    subset = items[::12]  # 59 clips: read, spontaneous and long-form
    assert {it.kind for it in subset} >= {"read", "spontaneous"}
    result = run_ours(subset, RecognizerConfig(device="cpu", word_timestamps=False))
    # faster-whisper scores 6.4 % on this subset with the same weights (bench offline --limit is not
    # this subset; measured once when the test was written)
    assert result.wer < 9.0, f"WER {result.wer:.2f} %"
