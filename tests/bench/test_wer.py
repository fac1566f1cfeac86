import pytest

from bench.wer import corpus_wer, normalize


def test_tags_dropped_from_references_only():
    assert normalize("<cutoff-montreal> Montreal <hes-forced> aligner", reference=True) == "montreal aligner"
    assert normalize("Mr. Smith's 2 cats!") == normalize("mister smith's two cats")


def test_corpus_wer_counts_errors_over_reference_words():
    assert corpus_wer(["a b c d", "e f"], ["a b c d", "e f"]) == 0.0
    assert corpus_wer(["a b c d", "e f"], ["a x c d", "e"]) == pytest.approx(100 * 2 / 6)
    assert corpus_wer(["hello world"], [""]) == 100.0


def test_empty_references_are_an_error():
    with pytest.raises(ValueError):
        corpus_wer(["<tag>"], ["x"])
