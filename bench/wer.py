"""WER as the dev set is scored: tags dropped, Whisper's English normalizer, jiwer."""
from __future__ import annotations

import re
from functools import lru_cache

import jiwer
import numpy as np

_TAG = re.compile(r"<[^<>]*>")


@lru_cache(maxsize=1)
def _normalizer():
    from whisper_normalizer.english import EnglishTextNormalizer

    return EnglishTextNormalizer()


@lru_cache(maxsize=8192)  # a replay scores the same references for every rule it tries
def normalize(text: str, reference: bool = False) -> str:
    if reference:
        text = _TAG.sub(" ", text)
    return " ".join(_normalizer()(text).split())


def corpus_errors(references: list[str], hypotheses: list[str]) -> tuple[int, int]:
    """Word errors (substitutions, deletions, insertions) and reference words, over the clips
    that have reference words."""
    refs = [normalize(r, reference=True) for r in references]
    hyps = [normalize(h) for h in hypotheses]
    keep = [i for i, r in enumerate(refs) if r]
    if not keep:
        raise ValueError("no reference words to score against")
    out = jiwer.process_words([refs[i] for i in keep], [hyps[i] for i in keep])
    return out.substitutions + out.deletions + out.insertions, out.substitutions + out.deletions + out.hits


def corpus_wer(references: list[str], hypotheses: list[str]) -> float:
    """Corpus WER in percent (errors over all reference words)."""
    errors, words = corpus_errors(references, hypotheses)
    return 100.0 * errors / words


def paired_difference(references: list[str], a: list[str], b: list[str], draws: int = 10000,
                      seed: int = 0) -> tuple[int, float, float]:
    """Word errors of hypotheses a less those of b on the same clips, and a 95 % interval for
    that difference from a bootstrap over the clips (which clips a test set holds is its noise)."""
    diff = np.array([corpus_errors([r], [x])[0] - corpus_errors([r], [y])[0]
                     for r, x, y in zip(references, a, b) if normalize(r, reference=True)])
    if not len(diff):
        raise ValueError("no reference words to score against")
    sums = diff[np.random.default_rng(seed).integers(0, len(diff), (draws, len(diff)))].sum(axis=1)
    lo, hi = np.percentile(sums, [2.5, 97.5])
    return int(diff.sum()), float(lo), float(hi)
