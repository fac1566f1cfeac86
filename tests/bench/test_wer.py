import pytest

from bench.wer import corpus_errors, corpus_wer, normalize, paired_difference


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


def test_corpus_errors_counts_errors_and_reference_words():
    assert corpus_errors(["a b c d", "<tag>", "e f"], ["a x c d", "y", "e f g"]) == (2, 6)


def test_a_paired_difference_comes_with_an_interval_over_clips():
    refs = ["the cat sat"] * 40
    same = paired_difference(refs, refs, refs)
    assert same == (0, 0.0, 0.0)
    worse = [r if i % 4 else "the dog sat" for i, r in enumerate(refs)]  # 10 clips, one error each
    diff, lo, hi = paired_difference(refs, worse, refs)
    assert diff == 10 and 2 < lo < 10 < hi < 18
    assert paired_difference(refs, refs, worse)[0] == -10
    every = ["the dog sat"] * 40  # one error on every clip: no draw of clips changes the sum
    assert paired_difference(refs, every, refs) == (40, 40.0, 40.0)
