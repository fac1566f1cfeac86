"""WER as the dev set is scored: tags dropped, Whisper's English normalizer, jiwer."""
from __future__ import annotations

import re
from functools import lru_cache

import jiwer

_TAG = re.compile(r"<[^<>]*>")


@lru_cache(maxsize=1)
def _normalizer():
    from whisper_normalizer.english import EnglishTextNormalizer

    return EnglishTextNormalizer()


def normalize(text: str, reference: bool = False) -> str:
    if reference:
        text = _TAG.sub(" ", text)
    return " ".join(_normalizer()(text).split())


def corpus_wer(references: list[str], hypotheses: list[str]) -> float:
    """Corpus WER in percent (errors over all reference words)."""
    refs = [normalize(r, reference=True) for r in references]
    hyps = [normalize(h) for h in hypotheses]
    keep = [i for i, r in enumerate(refs) if r]
    if not keep:
        raise ValueError("no reference words to score against")
    out = jiwer.process_words([refs[i] for i in keep], [hyps[i] for i in keep])
    return 100.0 * out.wer
