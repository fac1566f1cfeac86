"""The end-pointing benchmark's scoring: cutoffs, latency from the true end, WER cost."""
import numpy as np
import pytest

from bench.endpointing import best_at, first_endpoints, fixed_silence, save_decisions, score
from endpointing.data import Case
from endpointing.first_pass import Decision


def case(end, words):
    return Case("c", np.zeros(int((end + 2) * 16000), np.float32), end, " ".join(w for w, _, _ in words),
                words=words)


WORDS = [("turn", 0.1, 0.3), ("on", 0.35, 0.5), ("the", 1.2, 1.3), ("lights", 1.35, 1.8)]


def test_score_counts_cutoffs_latency_and_the_words_lost():
    cases = [case(1.8, WORDS), case(1.8, WORDS)]
    r = score(cases, [0.8, 2.1])  # the first endpoint lands in the mid-turn pause
    assert r["cutoff_pct"] == 50.0
    assert r["ep50_ms"] == r["ep90_ms"] == 300.0  # only the case that was not cut off
    assert r["wer_cost"] == 25.0  # two of eight reference words were never heard


def test_first_endpoint_takes_the_threshold_or_the_hard_limit():
    from asr.events import Endpoint

    c = case(1.8, WORDS)
    d = [Decision("s0", 0.5 + 0.9, 400, 0.5 + 0.6, 0.7, None, ""),
         Decision("s0", 0.5 + 2.0, 200, 0.5 + 1.85, 0.4, None, "")]
    hard = [Endpoint("s0", 0.5 + 3.4, 0.5 + 1.85, 1, True), Endpoint("s0", 0.5 + 3.9, 0.5 + 5.0, 1, True)]
    assert first_endpoints([c], [0.5], d, hard, [0.7, 0.4], 0.5) == pytest.approx([0.9])
    assert first_endpoints([c], [0.5], d, hard, [0.7, 0.45], 0.4) == pytest.approx([0.9])
    assert first_endpoints([c], [0.5], d, hard, [0.3, 0.45], 0.4) == pytest.approx([2.0])
    assert first_endpoints([c], [0.5], d, hard, [0.7, 0.4], 0.8) == pytest.approx([3.4])
    # a hard endpoint after a later case's speech is not this case's: none, so the case's audio end
    assert first_endpoints([c], [0.5], d, hard[1:], [0.7, 0.4], 0.8) == pytest.approx([1.8 + 2.0])


def test_decision_trace_names_each_decisions_case_on_the_case_clock(tmp_path):
    import json

    # numpy scalars, as the real cases and arbitrator give them
    a, b = case(np.float32(1.8), WORDS), case(np.float32(1.8), WORDS)
    b.id = "b"
    offsets = [0.5, 0.5 + 3.8]  # back to back on the lane, as bench.endpointing.lane puts them
    d = [Decision("s0", 0.5 + 0.9, np.float32(400), 0.5 + 0.6, np.float32(0.7), None, "turn on"),  # a's pause
         Decision("s0", 4.3 + 2.1, 300, 4.3 + 1.85, 0.9, None, "turn on the lights"),  # b's end
         Decision("s0", 4.3 + 3.0, 300, 4.3 + 2.9, 0.1, None, "")]  # after b's end + 0.5: nobody's
    save_decisions(tmp_path / "d.jsonl", [a, b], offsets, d)
    rows = [json.loads(x) for x in (tmp_path / "d.jsonl").read_text().splitlines()]
    assert [(r["case"], r["mid_turn"], r["text"]) for r in rows] == [("c", True, "turn on"), ("b", False, "turn on the lights")]
    assert rows[1]["t"] == pytest.approx(2.1) and rows[1]["end"] == pytest.approx(1.8)


def test_fixed_silence_and_best_operating_point():
    track = [(0.03 * k, max(0, 30 * (k - 10))) for k in range(60)]
    assert fixed_silence([track], 300) == [0.03 * 20]
    curve = [{"cutoff_pct": 10, "ep50_ms": 100, "ep90_ms": 200}, {"cutoff_pct": 2, "ep50_ms": 400, "ep90_ms": 900},
             {"cutoff_pct": 3, "ep50_ms": 300, "ep90_ms": 700}]
    assert best_at(curve) == curve[2]
    assert best_at(curve[:1]) is None


def test_a_case_that_pauses_past_the_hard_limit_on_its_own_is_left_out():
    from bench.endpointing import held_within_hard_limit

    a, b = case(1.8, WORDS), case(1.8, WORDS)
    quiet = [(0.6, 0.0), (1.0, 400.0), (1.9, 100.0), (3.5, 1600.0)]  # the long pause comes after the end
    long = [(0.6, 0.0), (2.1 - 0.5, 1500.0), (1.9, 0.0), (3.5, 1600.0)]  # 1.5 s of pause inside the turn
    keep, tracks, out = held_within_hard_limit([a, b], [quiet, long])
    assert keep == [a] and out == ["c"]
    assert tracks == [quiet]
