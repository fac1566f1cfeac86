"""Reranker: score combination, punctuation variants, speculative start in the streaming engine."""
from __future__ import annotations

import time

import pytest

from asr.llm.lm import TextScore
from asr.rerank import Reranker, RerankConfig, words_of
from asr.results import Hypothesis


class TableLM:
    """An LM whose log-probs come from a table, counting its calls."""

    name = "table"

    def __init__(self, table: dict[str, float], delay: float = 0.0):
        self.table, self.delay, self.calls = table, delay, 0

    def score(self, texts, prefix="", end="", batch=16):
        self.calls += 1
        time.sleep(self.delay)
        return [TextScore(self.table[t], len(t.split())) for t in texts]


def hyp(text, asr):
    return Hypothesis(text, (), asr, asr, asr)


def test_lm_weight_trades_asr_against_lm():
    lm = TableLM({"I had faced in them.": -37.0, "I had faith in them.": -23.0})
    nbest = [hyp("I had faced in them.", -3.0), hyp("I had faith in them.", -3.6)]
    assert Reranker(lm, RerankConfig(lm_weight=0.0)).rerank(nbest)[0].text == "I had faced in them."
    ranked = Reranker(lm, RerankConfig(lm_weight=0.25)).rerank(nbest)
    assert ranked[0].text == "I had faith in them."
    assert ranked[0].score == pytest.approx(-3.6 + 0.25 * -23.0)


def test_length_weight_counts_words():
    lm = TableLM({"a b": 0.0, "a b c": 0.0})
    nbest = [hyp("a b", -1.0), hyp("a b c", -1.4)]
    assert Reranker(lm, RerankConfig(length_weight=0.0)).rerank(nbest)[0].text == "a b"
    assert Reranker(lm, RerankConfig(length_weight=0.5)).rerank(nbest)[0].text == "a b c"


def test_punctuation_variants_are_one_candidate():
    lm = TableLM({"Suddenly his fingers close.": -60.0, "Suddenly, his fingers closed.": -57.0,
                  "Suddenly his fingers closed.": -59.0})
    nbest = [hyp("Suddenly his fingers close.", -3.8), hyp("Suddenly his fingers closed.", -4.1),
             hyp("Suddenly, his fingers closed.", -5.3)]
    ranked = Reranker(lm, RerankConfig(lm_weight=0.25)).rerank(nbest)
    assert len(ranked) == 2
    # the "closed" group takes its best ASR score (-4.1) and its best LM score (-57.0)
    assert ranked[0].text == "Suddenly his fingers closed."
    assert ranked[0].score == pytest.approx(-4.1 + 0.25 * -57.0)
    assert words_of("Wolf-dog, it's ME!") == "wolf dog it's me"


def test_single_hypothesis_skips_the_lm():
    lm = TableLM({})
    assert Reranker(lm).rerank([hyp("only one", -1.0)])[0].text == "only one"
    assert lm.calls == 0
    assert Reranker(lm).rerank([]) == []


def test_context_goes_into_the_prefix():
    r = Reranker(TableLM({}), RerankConfig(prompt="plain", context_turns=1))
    assert r.prefix(["first turn", "second turn"]) == ("second turn\n", "\n")
    chat = Reranker(TableLM({}), RerankConfig(prompt="chat")).prefix(["Book a table."])
    assert "Book a table." in chat[0] and chat[1] == "<|im_end|>"


def test_streaming_final_uses_the_speculative_scores(recognizer):
    from asr.streaming import StreamingRecognizer

    lm = TableLM({"Try again.": -10.0, "Tri again.": -30.0}, delay=0.05)
    rec = StreamingRecognizer(recognizer.lm, reranker=Reranker(lm))
    st = rec.state("s0")
    st.nbest = [("Tri again.", -0.1, -1.0), ("Try again.", -0.2, -2.0)]
    rec._speculate(st, pause_ms=100, t=5.0)
    assert st.spec is None  # pause too short for the first end-pointing pass
    rec._speculate(st, pause_ms=250, t=5.0)
    rec._speculate(st, pause_ms=300, t=5.1)  # same N-best: not scored twice
    text, ready = rec._rerank(st, st.nbest, t=5.8)
    assert text == "Try again." and lm.calls == 1
    assert ready == pytest.approx(5.8)  # the LM finished long before the final
    # the N-best changed after the speculative start: scored again at the final
    st.nbest = [("Try a gain.", -0.1, -1.0), ("Try again.", -0.2, -2.0)]
    lm.table["Try a gain."] = -40.0
    text, ready = rec._rerank(st, st.nbest, t=7.0)
    assert text == "Try again." and lm.calls == 2
    assert ready >= 7.0 + 0.05
    assert len(rec.rerank_waits_ms) == 2 and rec.rerank_waits_ms[0] == 0.0
