"""The trained stability score and the dynamic rule that uses it (asr/stability.py)."""
from dataclasses import replace

import numpy as np
import pytest

from asr.lookahead import DynamicLookahead, TentativeWord, learned_spec, parse_policy
from asr.stability import NAMES, StabilityModel, features, fit, load_stability


def _model(bias: float, threshold: float = 0.5) -> StabilityModel:
    n = len(NAMES)
    return StabilityModel((0.0,) * n, (1.0,) * n, (0.0,) * n, bias, threshold)


def test_features_read_the_word_its_neighbours_and_the_clock():
    f = dict(zip(NAMES, features([0.9, 0.5, 0.8], [3, 5, 2], 1, right_s=0.5, held_s=3.0)))
    assert f["log_prob"] == pytest.approx(np.log(0.5)) and f["next_log_prob"] == pytest.approx(np.log(0.8))
    assert f["before_log_prob"] == pytest.approx(np.log(0.9)) and f["letters"] == 0.5
    assert f["held_s"] == 2.0  # capped
    assert (f["first"], f["last"]) == (0.0, 0.0)
    g = dict(zip(NAMES, features([0.9], [3], 0, 0.3, 0.3)))
    assert (g["first"], g["last"], g["next_log_prob"], g["before_log_prob"]) == (1.0, 1.0, 0.0, 0.0)


def test_fit_learns_which_side_of_a_feature_keeps_its_reading():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, len(NAMES)))
    y = (x[:, 0] + 0.3 * rng.normal(size=400) > 0).astype(float)  # the log-probability decides
    m = fit(x, y, threshold=0.9)
    assert m.weights[0] > 1.0 and max(abs(w) for w in m.weights[1:]) < m.weights[0] / 3
    with pytest.raises(ValueError):
        fit(x, np.ones(400), threshold=0.9)


def test_a_model_round_trips_and_refuses_other_features(tmp_path):
    m = replace(_model(2.0, 0.97), trained_on="test")
    m.save(tmp_path / "m.json")
    assert StabilityModel.load(tmp_path / "m.json") == m
    import json

    d = json.loads((tmp_path / "m.json").read_text())
    for k in ("max_ms", "first_ms", "first_words"):  # a file from before the rule had them
        del d[k]
    (tmp_path / "m.json").write_text(json.dumps(d))
    assert StabilityModel.load(tmp_path / "m.json") == replace(m, max_ms=1200.0, first_ms=0.0, first_words=1)
    d["features"] = d["features"][:-1]
    (tmp_path / "m.json").write_text(json.dumps(d))
    with pytest.raises(ValueError, match="other features"):
        StabilityModel.load(tmp_path / "m.json")


def _words(prob=0.3):
    return [TentativeWord(" a", 0.1, 0.4, prob), TentativeWord(" cat", 0.4, 0.8, 0.95)]


def test_the_learned_rule_commits_on_its_score_and_still_waits_for_the_minimums():
    sure, unsure = DynamicLookahead(model=_model(10.0)), DynamicLookahead(model=_model(-10.0))
    hand = DynamicLookahead()
    for p in (sure, unsure, hand):
        p.commit(_words(), 1.0)
    # at 1.3 s "a" has held 300 ms with 900 ms after it: the hand rule waits on its 0.3
    assert hand.commit(_words(), 1.3) == 0
    assert sure.commit(_words(), 1.3) == 2
    assert unsure.commit(_words(), 1.3) == 0
    assert unsure.commit(_words(), 1.6) == 1  # 1.2 s after "a": max_ms commits it; "cat" has 0.8
    fresh = DynamicLookahead(model=_model(10.0))
    assert fresh.commit(_words(), 1.0) == 0  # nothing has held stable_ms yet


def test_the_learned_rule_holds_an_utterances_first_words_and_takes_its_maximum_from_the_model():
    sure = DynamicLookahead(model=replace(_model(10.0), first_ms=1000.0, first_words=2))
    sure.commit(_words(), 1.0)
    assert sure.commit(_words(), 1.3) == 0  # "a" has 900 ms after it, the first words need 1 s
    assert sure.commit(_words(), 1.45) == 1  # "a" now; "cat", the second word, has 650 ms
    assert sure.commit(_words()[1:], 1.75) == 0
    assert sure.commit(_words()[1:], 1.8) == 1
    sure.reset()  # a new utterance: its first words wait again
    sure.commit(_words(), 1.0)
    assert sure.commit(_words(), 1.3) == 0
    one = DynamicLookahead(model=replace(_model(10.0), first_ms=1000.0))
    one.commit(_words(), 1.0)
    assert one.commit(_words(), 1.45) == 2  # only the first word waits
    unsure = DynamicLookahead(model=replace(_model(-10.0), max_ms=1500.0))
    unsure.commit(_words(), 1.0)
    assert unsure.commit(_words(), 1.6) == 0 and unsure.commit(_words(), 1.9) == 1


def test_parse_policy_chooses_the_learned_or_the_hand_rule():
    assert parse_policy("dynamic:hand").model is None and parse_policy("dynamic", "no-such-model").model is None
    with pytest.raises(ValueError, match="no trained stability model"):
        parse_policy("dynamic:learned", "no-such-model")
    shipped = load_stability("tiny.en")
    assert shipped is not None and 0.5 < shipped.threshold < 1 and len(shipped.weights) == len(NAMES)
    assert parse_policy("dynamic", "tiny.en").model == shipped
    assert parse_policy("dynamic:learned:0.9", "tiny.en").model.threshold == 0.9
    held = parse_policy("dynamic:learned:0.9:800", "tiny.en")
    assert held.model.threshold == 0.9 and held.min_speech_s == 0.8
    named = parse_policy("dynamic:learned:0.9:max=1500:first=600:words=3", "tiny.en").model
    assert (named.threshold, named.max_ms, named.first_ms, named.first_words) == (0.9, 1500.0, 600.0, 3)
    assert named.weights == shipped.weights
    again = parse_policy(learned_spec(named), "tiny.en")  # the name is a spec that gives the rule back
    assert again.model == named and again.name == learned_spec(named)
    assert parse_policy("dynamic:learned:score=0.9:min=800", "tiny.en").min_speech_s == 0.8
    for bad in ("dynamic:learned:0.9:800:1", "dynamic:learned:0.9:score=0.8", "dynamic:learned:fast=1"):
        with pytest.raises(ValueError, match="NAME=VALUE"):
            parse_policy(bad, "tiny.en")


def test_the_learned_rule_is_due_when_its_score_or_its_maximum_commits_the_word():
    for model, first in ((_model(10.0), 1.1), (replace(_model(10.0), first_ms=900.0), 1.3),
                         (_model(-10.0), 1.6)):
        p = DynamicLookahead(model=model)
        assert p.commit(_words(), 0.9) == 0
        due = p.due(_words(), 0.9)
        # held stable_ms (200) from 0.9; the first word's 900 ms after "a" ends at 1.3; the unsure
        # score waits for max_ms, 1.2 s after "a"
        assert due == pytest.approx(first, abs=0.031)
        assert p.commit(_words(), due - 0.03) == 0 and p.commit(_words(), due) >= 1
