"""The first pass and the decision loop, with a scripted arbitrator; the model's own contract."""
import numpy as np
import pytest
import torch

from asr.events import CommittedWord, to_dict
from asr.pause import PauseState
from asr.streaming import EndSignals, StreamState
from endpointing.arbitrator import Arbitrator, Ensemble
from endpointing.features import FRAMES, Features, collate, from_state
from endpointing.first_pass import EndpointConfig, Endpointer
from endpointing.train import Example, fit, load_examples, save_examples


class Scripted:
    """Answers the next probability from a list and records what it was asked."""

    def __init__(self, probs):
        self.probs = list(probs)
        self.asked = []

    def prob(self, feats):
        self.asked.append(feats[0])
        return [self.probs.pop(0)]


def state(pass_end=None, text=" Turn on the lights."):
    st = StreamState("s0", None, in_speech=True, onset=0.3, received=int(2.0 * 16000))
    st.words = [CommittedWord(text, 0.3, 1.4, 1.6)]
    if pass_end is not None:
        encoded(st, pass_end)
        st.signals = EndSignals(0.5, 0.9, 0.0, pass_end)
    return st


def encoded(st, end):
    """A pass whose encoder has run up to ``end`` (its decoder has not yet)."""
    st.enc = torch.randn(int(end / 0.02), 384)
    st.enc_end = end


def pause(ms, end=1.5, speech=False):
    return PauseState(0, 0.1, speech, ms, 0.3, None if speech else end)


def test_candidate_then_ask_once_per_pass_until_accepted():
    arb = Scripted([0.2, 0.9])
    ep = Endpointer(EndpointConfig(candidate_ms=100, early_prob=2.0, threshold=0.5), arb)
    st = state(pass_end=1.4)  # this pass ended before the pause began: it cannot judge the pause
    assert ep.decide(st, pause(60), 1.56) == (False, [])
    assert ep.decide(st, pause(120), 1.62) == (False, [])
    encoded(st, 1.62)  # a pass that saw the pause: asked before its decoder runs
    ended, events = ep.decide(st, pause(120), 1.70)
    assert not ended and events[0].pass_ == 2 and not events[0].accepted and events[0].prob == 0.2
    first = events[0].first_pass
    assert ep.decide(st, pause(300), 1.9) == (False, [])  # no new pass: no new question
    st.signals = EndSignals(0.5, 0.9, 0.1, 1.62)  # that pass's decoder has run: no new question
    assert ep.decide(st, pause(320), 1.95) == (False, [])
    encoded(st, 1.92)
    ended, events = ep.decide(st, pause(420), 2.0)
    assert ended and events[0].accepted and events[0].prob == 0.9
    assert events[0].first_pass == first == 1.62 and events[0].speech_end == 1.5
    assert len(arb.asked) == 2 and abs(arb.asked[1].numeric[9] - 0.42) < 1e-6  # it sees the pause grow
    d = to_dict(events[0])
    assert d["type"] == "endpoint" and d["pass"] == 2 and d["first_pass"] == 1.62 and d["prob"] == 0.9


def test_a_rejected_pass_is_asked_again_once_after_its_decoder():
    arb = Scripted([0.2, 0.9])
    ep = Endpointer(EndpointConfig(candidate_ms=100, early_prob=2.0, threshold=0.5), arb)
    st = state(pass_end=1.4, text=" Turn on the")
    assert ep.decide(st, pause(120), 1.62, again=True) == (False, [])  # nothing asked about this pass yet
    encoded(st, 1.62)
    assert not ep.decide(st, pause(120), 1.70)[0]
    st.words = [CommittedWord(" Turn on the lights.", 0.3, 1.4, 1.8)]  # its decoder has run
    ended, events = ep.decide(st, pause(120), 1.80, again=True)
    assert ended and events[0].prob == 0.9 and events[0].first_pass == 1.62
    assert arb.asked[1].enc is not arb.asked[0].enc and np.array_equal(arb.asked[1].enc, arb.asked[0].enc)
    assert not np.array_equal(arb.asked[1].words, arb.asked[0].words)  # read its own last words
    assert ep.decide(st, pause(120), 1.85, again=True) == (False, [])  # once a pass
    assert len(arb.asked) == 2
    off = Endpointer(EndpointConfig(candidate_ms=100, early_prob=2.0, reread=False), Scripted([0.2]))
    st = state(pass_end=1.62)
    assert not off.decide(st, pause(120), 1.70)[0]
    assert off.decide(st, pause(120), 1.80, again=True) == (False, []) and len(off.arbitrator.asked) == 1


def test_speech_withdraws_the_candidate():
    ep = Endpointer(EndpointConfig(candidate_ms=100, early_prob=2.0), Scripted([0.1, 0.1]))
    st = state(pass_end=1.7)
    ep.decide(st, pause(150), 1.7)
    ep.decide(st, pause(0, speech=True), 1.8)
    encoded(st, 2.6)
    _, events = ep.decide(st, pause(120, end=2.5), 2.62)
    assert events[0].first_pass == 2.62  # a new candidate, not the old one


def test_hard_limit_and_max_utterance_always_end():
    """...and must_end knows before any pass (the engine's pass then does not give way)."""
    ep = Endpointer(EndpointConfig(hard_ms=1500), Scripted([]))
    assert ep.must_end(state(), pause(1500)) and not ep.must_end(state(), pause(1400))
    ended, events = ep.decide(state(), pause(1500), 3.1)
    assert ended and events[0].pass_ == 1 and events[0].accepted and events[0].prob is None
    ep = Endpointer(EndpointConfig(max_utterance_s=1.0), Scripted([]))
    assert ep.must_end(state(), pause(0, speech=True))
    ended, events = ep.decide(state(), pause(0, speech=True), 2.0)
    assert ended and events[0].pass_ == 1
    ep = Endpointer(EndpointConfig(max_utterance_s=5.0), Scripted([]))
    assert not ep.must_end(state(), pause(0, speech=True))
    assert ep.decide(state(), pause(0, speech=True), 2.0) == (False, [])
    closed = state()
    closed.closed = True
    assert ep.must_end(closed, None) and not ep.must_end(state(), None)


def test_sure_sentence_end_proposes_before_the_candidate_time():
    arb = Scripted([0.8])
    ep = Endpointer(EndpointConfig(candidate_ms=300, early_prob=0.9), arb)
    st = state(pass_end=1.6)
    st.signals = EndSignals(0.95, 0.9, 0.1, 1.6)
    ended, events = ep.decide(st, pause(60), 1.61)
    assert ended and events[0].first_pass == 1.61
    ep = Endpointer(EndpointConfig(candidate_ms=300, early_prob=0.9), Scripted([]))
    st = state(pass_end=1.6, text=" Turn on the")  # no sentence end: wait for the candidate time
    st.signals = EndSignals(0.95, 0.9, 0.1, 1.6)
    assert ep.decide(st, pause(60), 1.61) == (False, [])


def test_without_an_arbitrator_the_pause_rule_decides():
    ep = Endpointer(EndpointConfig(pause_only_ms=800), None)
    assert ep.decide(state(pass_end=1.9), pause(700), 2.2) == (False, [])
    assert not ep.must_end(state(pass_end=1.9), pause(700)) and ep.must_end(state(pass_end=1.9), pause(810))
    ended, events = ep.decide(state(pass_end=1.9), pause(810), 2.3)
    assert ended and events[0].pass_ == 1
    arb = Scripted([])  # with an arbitrator the same pause is its question, not a rule
    assert not Endpointer(EndpointConfig(pause_only_ms=800), arb).must_end(state(pass_end=1.9), pause(810))
    assert arb.asked == []


def feats(seed, words=(5, 7)):
    g = np.random.default_rng(seed)
    n = 60
    enc = np.concatenate([np.zeros((FRAMES - n, 384)), g.normal(size=(n, 384))]).astype(np.float16)
    mask = np.r_[np.zeros(FRAMES - n), np.ones(n)].astype(np.float32)
    return Features(enc, mask, g.random(12).astype(np.float32), np.array(words))


def test_arbitrator_is_small_and_the_ablations_ignore_their_missing_input():
    torch.manual_seed(0)
    both, acoustic, text = (Arbitrator(inputs=i) for i in ("both", "acoustic", "text"))
    assert sum(p.numel() for p in both.parameters()) < 1_000_000
    a, b = feats(0), feats(1)
    swapped_enc = Features(b.enc, b.mask, a.numeric, a.words)
    swapped_words = Features(a.enc, a.mask, a.numeric, np.array([9, 11]))
    assert text.prob([a]) == text.prob([swapped_enc])  # text-only: the acoustic input does not matter
    assert acoustic.prob([a]) == acoustic.prob([swapped_words])  # acoustic-only: the words do not
    assert both.prob([a]) != both.prob([swapped_enc]) and both.prob([a]) != both.prob([swapped_words])
    # padding frames are masked: what sits under a zero mask does not change the answer
    junk = a.enc.copy()
    junk[:10] = 5.0
    assert both.prob([a]) == pytest.approx(both.prob([Features(junk, a.mask, a.numeric, a.words)]), abs=1e-6)


def test_ensemble_answers_its_members_mean_logit_and_saves_whole(tmp_path):
    torch.manual_seed(0)
    members = [Arbitrator(inputs="both") for _ in range(3)]
    ens = Ensemble(members)
    x = [feats(k) for k in range(4)]
    logits = [torch.logit(torch.tensor(m.prob(x)), eps=1e-7) for m in members]
    assert np.allclose(ens.prob(x), torch.sigmoid(torch.stack(logits).mean(0)).tolist(), atol=1e-5)
    assert sum(p.numel() for p in ens.parameters()) < 1_000_000
    ens.save(tmp_path / "a.pt", {"note": "test"})
    back = Ensemble.load(tmp_path / "a.pt")
    assert back.meta == {"note": "test"} and len(back.members) == 3
    assert np.allclose(ens.prob(x), back.prob(x), atol=2e-3)  # fp16 weights
    with pytest.raises(ValueError):
        Ensemble([])


def test_fit_gives_members_of_different_seeds():
    data = [Example(f"c{k}", 1.0, 100.0, k % 2, feats(k), "") for k in range(8)]
    a, b = fit(data, epochs=1, members=2), fit(data, epochs=1, members=2)
    x = [feats(k) for k in range(3)]
    assert a.prob(x) == b.prob(x)  # seeded: the same fit twice
    assert a.members[0].prob(x) != a.members[1].prob(x)  # but the members differ


def test_saved_training_examples_load_back_unchanged(tmp_path):
    data = [Example(f"c{k}", 1.0 + k, 100.0 * k, k % 2, feats(k), f"text {k}") for k in range(3)]
    save_examples(tmp_path / "ex.npz", data)
    back = load_examples(tmp_path / "ex.npz")
    assert [(e.case, e.t, e.pause_ms, e.label, e.text) for e in back] == \
        [(e.case, e.t, e.pause_ms, e.label, e.text) for e in data]
    for a, b in zip(data, back):
        assert np.array_equal(a.features.enc, b.features.enc)
        assert np.array_equal(a.features.mask, b.features.mask)
        assert np.array_equal(a.features.numeric, b.features.numeric)
        assert np.array_equal(a.features.words, b.features.words)


def test_features_from_a_stream_state():
    st = state(pass_end=1.0)
    st.enc = torch.arange(30 * 384, dtype=torch.float32).reshape(30, 384)
    f = from_state(st, 250.0, 1.7)
    assert f.enc.shape == (FRAMES, 384) and f.mask.sum() == 30 and f.mask[-1] == 1 and f.mask[0] == 0
    assert f.numeric[0] == 1.0 and f.numeric[3] == 0.0  # ends with "."
    assert f.numeric[9] == pytest.approx(0.25) and f.numeric[10] == pytest.approx(0.17)
    assert f.words[0] != 0 and f.words[1] != 0 and f.words[0] != f.words[1]
    assert collate([f, f])["enc"].shape == (2, FRAMES, 384)
    st.words, st.signals = [], None  # a new utterance's first pass, before any decoder output
    f = from_state(st, 250.0, 0.4)
    assert f.numeric[11] == 1.0 and f.numeric[5] == 0.0 and (f.words == 0).all()
    assert from_state(StreamState("s", None), 100.0, 1.0) is None  # no pass yet
