"""Rerank the recognizer's N-best list with a small causal LM.

combined = asr + lm_weight * lm + length_weight * words, where asr is the hypothesis' summed
token log-prob, lm its summed log-prob under the LM (end marker included, so a sentence cut short
pays for it), and words its word count. Hypotheses that differ only in case and punctuation are
one candidate (each score its best over the variants): such differences cost no WER, and per
token they would otherwise sway both models. The defaults sit in the middle of a flat region of a
sweep over the whole dev set; strict tuning on one half (`speechfront bench rerank --tune`) does
less well on the other, so read them as a reasonable setting, not a held-out result.
"""
from __future__ import annotations

import re
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Sequence

from .results import Hypothesis, Transcript

SYSTEM = "You write down exactly what a speaker said, as one correct English sentence."


@dataclass(frozen=True)
class RerankConfig:
    lm_weight: float = 0.25
    length_weight: float = 0.0
    prompt: str = "plain"  # "plain": a bare newline (context lines before it); "chat": ChatML instruction
    max_hypotheses: int = 8
    context_turns: int = 2  # previous finals given to the LM as context


@dataclass(frozen=True)
class Ranked:
    hypothesis: Hypothesis
    lm: float
    score: float

    @property
    def text(self) -> str:
        return self.hypothesis.text


class Reranker:
    def __init__(self, lm=None, config: RerankConfig = RerankConfig(), device: str = "auto"):
        if lm is None:
            from .llm import load_llm

            lm = load_llm(device=device)
        self.lm, self.config = lm, config
        self._lock = threading.Lock()  # one scoring at a time on the shared model
        self._pool: ThreadPoolExecutor | None = None

    def prefix(self, context: Sequence[str] = ()) -> tuple[str, str]:
        """(prefix, end marker) that frame a hypothesis for the LM."""
        turns = [t for t in context if t.strip()][-self.config.context_turns :] if self.config.context_turns else []
        if self.config.prompt == "plain":
            return "".join(t.strip() + "\n" for t in turns) or "\n", "\n"
        system = SYSTEM
        if turns:
            system += " Earlier the speaker said: " + " ".join(t.strip() for t in turns)
        return f"<|im_start|>system\n{system}<|im_end|>\n<|im_start|>assistant\n", "<|im_end|>"

    def lm_scores(self, texts: Sequence[str], context: Sequence[str] = ()) -> list[float]:
        if len(texts) < 2:  # nothing to choose between: skip the LM
            return [0.0] * len(texts)
        prefix, end = self.prefix(context)
        with self._lock:
            return [s.logprob for s in self.lm.score([t.strip() for t in texts], prefix=prefix, end=end)]

    def rerank(self, nbest: Sequence[Hypothesis], context: Sequence[str] = (),
               lm: Sequence[float] | None = None) -> list[Ranked]:
        """The N-best reordered by combined score, best first. `lm`: scores computed earlier."""
        hyps = list(nbest)[: self.config.max_hypotheses]
        if not hyps:
            return []
        if lm is None:
            lm = self.lm_scores([h.text for h in hyps], context)
        groups: dict[str, tuple[Hypothesis, float]] = {}
        for h, s in zip(hyps, lm):
            k = words_of(h.text)
            if k in groups:
                best, s0 = groups[k]
                h, s = (h if h.sum_logprob > best.sum_logprob else best), max(s, s0)
            groups[k] = (h, s)
        c = self.config
        ranked = [Ranked(h, s, combine(h.sum_logprob, s, len(k.split()), c)) for k, (h, s) in groups.items()]
        return sorted(ranked, key=lambda r: r.score, reverse=True)

    def rerank_transcript(self, t: Transcript, context: Sequence[str] = ()) -> Transcript:
        """The transcript with its text replaced by the reranked best (word times dropped if it changed)."""
        ranked = self.rerank(t.nbest, context)
        if not ranked or ranked[0].text == t.text:
            return t
        nbest = tuple(r.hypothesis for r in ranked)
        return replace(t, text=ranked[0].text, nbest=nbest, words=())

    def submit(self, texts: Sequence[str], context: Sequence[str] = ()) -> Future:
        """Score in the background (speculative start); the future gives (LM scores, compute seconds)."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rerank")
        return self._pool.submit(self._timed, list(texts), list(context))

    def _timed(self, texts, context):
        t = time.perf_counter()
        scores = self.lm_scores(texts, context)
        return scores, time.perf_counter() - t


_PUNCT = re.compile(r"[^\w\s']")


def words_of(text: str) -> str:
    """Lower-case words without punctuation: what WER sees."""
    return " ".join(_PUNCT.sub(" ", text.lower()).split())


def combine(asr: float, lm: float, words: int, config: RerankConfig) -> float:
    return asr + config.lm_weight * lm + config.length_weight * words
