import numpy as np
import pytest

from asr.frames import Framer
from asr.lookahead import DynamicLookahead, FixedLookahead, LocalAgreement, TentativeWord, parse_policy
from asr.pause import PauseConfig, PauseTracker


@pytest.mark.parametrize("vad", ["silero", "energy"])
def test_pause_tracker_on_speech_then_silence(demo_audio, vad):
    # 1 s silence, the demo's first 2.2 s ("Ever tried."), then 1.5 s silence
    x = np.concatenate([np.zeros(16000, np.float32), demo_audio[:35000], np.zeros(24000, np.float32)])
    fr = Framer("s")
    tracker = PauseTracker(PauseConfig(vad=vad))
    states = [tracker.update(f) for f in fr.push(x) + fr.close()]
    speech = [s for s in states if s.speech]
    assert speech, "no speech found"
    first = speech[0]
    assert 1.0 <= first.speech_start <= 1.6
    assert states[20].pause_ms == 0.0 and not states[20].speech  # before any speech: no pause yet
    end = states[-1]
    assert not end.speech and end.speech_end is not None
    assert 2.0 <= end.speech_end <= 3.4
    assert end.pause_ms == pytest.approx((len(states) * 0.03 - end.speech_end) * 1000, abs=1)
    pauses = [s.pause_ms for s in states if s.speech_end == end.speech_end]
    assert pauses == sorted(pauses) and pauses[-1] > 1000  # grows through the final pause


def w(text, end, prob=0.9, start=None):
    return TentativeWord(text, end - 0.2 if start is None else start, end, prob)


def test_fixed_lookahead():
    p = FixedLookahead(500, agree=False)
    words = [w(" a", 1.0), w(" b", 1.4), w(" c", 1.8)]
    assert p.commit(words, 1.95) == 2
    assert p.commit([w(" a...", 1.0)], 5.0) == 0  # a cut-off word never commits


def test_fixed_lookahead_that_must_agree_waits_for_a_second_reading():
    p = FixedLookahead(500)
    assert p.commit([w(" clyde", 1.0), w(" dean", 1.3)], 1.9) == 0  # 500 ms after both, one reading
    assert p.commit([w(" claudine", 1.3), w(" was", 1.5)], 2.0) == 0  # read anew
    assert p.commit([w(" claudine", 1.3), w(" was", 1.5)], 2.1) == 2
    assert FixedLookahead(500, agree=False).commit([w(" clyde", 1.0), w(" dean", 1.3)], 1.9) == 2


def test_a_word_the_aligner_gave_no_frames_waits():
    """Two passes put "Ever try." at 0.00-0.00 while "tried" was still being spoken: with no
    frames, where the word ends is unknown, so no lookahead counts audio after it."""
    lost = [w(" ever", 0.0, start=0.0), w(" try.", 0.0, start=0.0)]
    p, f = DynamicLookahead(threshold=0.5, stable_ms=100, max_ms=500), FixedLookahead(200, min_speech_s=0)
    for t in (0.8, 1.0, 1.5):
        assert p.commit(lost, t) == 0 and f.commit(lost, t) == 0
    timed = [w(" ever", 0.4), w(" tried.", 1.0)]
    assert p.commit(timed, 1.6) == 1 and f.commit(timed, 1.6) == 1  # "tried." is a new reading
    assert p.commit(timed[1:], 1.8) == 1 and f.commit(timed[1:], 1.8) == 1


def test_dynamic_commits_stable_confident_words_and_waits_on_doubt():
    p = DynamicLookahead(threshold=0.5, stable_ms=300, max_ms=1000)
    assert p.commit([w(" the", 0.5), w(" cat", 0.9)], 1.0) == 0  # first sight: nothing is stable yet
    assert p.commit([w(" the", 0.5), w(" cat", 0.9)], 1.2) == 0  # held 200 ms only
    assert p.commit([w(" the", 0.5), w(" cat", 0.9, prob=0.2)], 1.35) == 1  # "cat" is unsure
    assert p.commit([w(" cat", 0.9, prob=0.2)], 1.6) == 0
    assert p.commit([w(" cat", 0.9, prob=0.2)], 1.95) == 1  # 1 s of right context forces it


def test_dynamic_wants_more_right_context_the_less_sure_a_word_is():
    """Between the threshold and `sure` the wait shrinks with the word's probability: a first
    word at p 0.54 ("water" for "Wada") committed on 300 ms of right context."""
    p = DynamicLookahead(threshold=0.5, sure=0.9, stable_ms=100, max_ms=1200, right_ms=200)
    assert [round(p.needed_ms(x)) for x in (0.3, 0.5, 0.7, 0.9, 0.99)] == [1200, 1200, 700, 200, 200]
    words = [w(" water", 1.0, prob=0.7), w(" in", 1.2, prob=0.95)]
    assert p.commit(words, 1.2) == 0
    assert p.commit(words, 1.6) == 0  # 600 ms after "water": not yet
    assert p.commit(words, 1.75) == 2  # 750 ms: "water", and the sure "in" after it
    step = DynamicLookahead(threshold=0.5, stable_ms=100, max_ms=1200, right_ms=200, sure=0.5)
    assert step.needed_ms(0.5) == 200 and step.needed_ms(0.49) == 1200


def test_dynamic_at_its_maximum_still_wants_two_passes_that_agree():
    """An uncertain word forced by max_ms was one pass's reading ("Street out they swam")."""
    p = DynamicLookahead(threshold=0.5, stable_ms=200, max_ms=1000)
    assert p.commit([w(" street", 0.8, prob=0.3)], 1.0) == 0
    assert p.commit([w(" straight", 0.8, prob=0.3)], 1.9) == 0  # 1.1 s after it, but read anew
    assert p.commit([w(" straight", 0.8, prob=0.3)], 2.0) == 0  # held 100 ms only
    assert p.commit([w(" straight", 0.8, prob=0.3)], 2.1) == 1


def test_dynamic_waits_for_right_context():
    """A stable, confident word still waits until right_ms of audio follows it: a word at the
    window's end ("a" before "superior") can change once the next word is heard."""
    words = [w(" smiled", 0.5), w(" a", 1.0)]
    p = DynamicLookahead(threshold=0.5, stable_ms=100, max_ms=1000, right_ms=200)
    assert p.commit(words, 1.0) == 0
    assert p.commit(words, 1.15) == 1  # both stable for 150 ms; "a" has only 150 ms after it
    assert p.commit(words[1:], 1.25) == 1
    eager = DynamicLookahead(threshold=0.5, stable_ms=100, max_ms=1000, right_ms=0)
    eager.commit(words, 1.0)
    assert eager.commit(words, 1.15) == 2


def test_a_held_back_pass_still_counts_towards_stability():
    """limit=0 (the engine's hold at the start of speech) commits nothing, but the words seen then have
    held since then, so they commit on the first pass allowed to."""
    words = [w(" the", 0.5), w(" cat", 0.9)]
    p = DynamicLookahead(threshold=0.5, stable_ms=300, max_ms=5000, right_ms=0)
    assert p.commit(words, 1.0, limit=0) == 0
    assert p.commit(words, 1.2, limit=0) == 0
    assert p.commit(words, 1.3) == 2
    la = LocalAgreement()
    assert la.commit(words, 1.0, limit=0) == 0
    assert la.commit(words, 2.0) == 2
    assert FixedLookahead(0, agree=False).commit(words, 1.0, limit=1) == 1
    f = FixedLookahead(0, min_speech_s=0)
    assert f.commit(words, 1.0, limit=0) == 0
    assert f.commit(words, 1.1) == 2


def test_dynamic_restarts_the_clock_when_an_earlier_word_changes():
    p = DynamicLookahead(threshold=0.5, stable_ms=300, max_ms=5000)
    p.commit([w(" a", 0.3), w(" b", 0.6)], 1.0)
    assert p.commit([w(" x", 0.3), w(" b", 0.6)], 1.5) == 0
    assert p.commit([w(" x", 0.3), w(" b", 0.6)], 1.9) == 2


def test_local_agreement_commits_the_agreed_prefix():
    p = LocalAgreement()
    assert p.interval == 1.0
    assert p.commit([w(" a", 1), w(" b", 2)], 2) == 0
    assert p.commit([w(" a", 1), w(" c", 2), w(" d", 3)], 3) == 1
    assert p.commit([w(" c", 2), w(" d", 3)], 4) == 2


def test_no_policy_commits_half_a_word():
    """Whisper writes "mid-stream" as " mid" and "-stream": committing " mid" alone let the next
    pass, forced to end on "in mid", go on without "-stream"."""
    words = [w(" in", 0.5), w(" mid", 0.8), w("-stream", 1.5, prob=0.3)]
    assert FixedLookahead(200, min_speech_s=0, agree=False).commit(words, 1.2) == 1
    assert FixedLookahead(200, min_speech_s=0, agree=False).commit(words, 1.7) == 3
    p = DynamicLookahead(threshold=0.5, stable_ms=100, max_ms=5000, right_ms=0)
    p.commit(words, 1.0)
    assert p.commit(words, 1.2) == 1  # " mid" is stable and sure, but its rest is not
    assert p.commit(words[1:], 1.4) == 0
    assert p.commit([words[1], w("-stream", 1.5, prob=0.9)], 1.5) == 2  # both held since 1.0
    la = LocalAgreement()
    la.commit(words, 1.0)
    assert la.commit([w(" in", 0.5), w(" mid", 0.8), w("-stream", 1.5), w(" on", 2.0)], 2.0) == 3


def test_parse_policy():
    assert isinstance(parse_policy("fixed:750"), FixedLookahead) and parse_policy("fixed:750").ms == 750
    assert parse_policy("fixed:500").agree and not parse_policy("fixed:500:once").agree
    assert isinstance(parse_policy("dynamic"), DynamicLookahead)
    d = parse_policy("dynamic:250:900:150:0.6")
    assert (d.stable_ms, d.max_ms, d.right_ms, d.threshold) == (250, 900, 150, 0.6)
    assert parse_policy("dynamic:250:900:150:0.6:800").min_speech_s == 0.8
    assert parse_policy("dynamic:250:900:150:0.6:0:0.9").sure == 0.9
    assert parse_policy("dynamic").sure == 0.8 and parse_policy("dynamic:200:1200:200:0.5:0:0.5").sure == 0.5
    assert isinstance(parse_policy("la2"), LocalAgreement)
    for bad in ("soon", "fixed:500:maybe", "dynamic:200:1200:200:0.5:0:0.8:1500"):
        with pytest.raises(ValueError):
            parse_policy(bad)


def _commits_first_at(policy, words, due):
    """The policy, on passes that read `words` alike, commits the first word at `due`, not 30 ms
    before (a pass there would have been wasted)."""
    assert policy.commit(words, due - 0.03) == 0
    assert policy.commit(words, due) >= 1


def test_due_is_when_the_first_waiting_word_commits_if_its_reading_holds():
    p = DynamicLookahead(threshold=0.5, stable_ms=300, max_ms=1000)
    words = [w(" the", 0.5), w(" cat", 0.9, prob=0.6)]
    assert p.commit(words, 1.0) == 0
    due = p.due(words, 1.0)
    assert due == pytest.approx(1.3, abs=0.031)  # "the" has its right context; it must hold 300 ms
    _commits_first_at(p, words, due)
    # "cat" at 0.6 needs 200 + 800 * (0.8 - 0.6) / (0.8 - 0.5) ms after it
    due = p.due(words[1:], due)
    assert due == pytest.approx(0.9 + 0.2 + 0.8 * 0.2 / 0.3, abs=0.031)
    _commits_first_at(p, words[1:], due)
    unsure = DynamicLookahead(threshold=0.5, stable_ms=300, max_ms=1000)
    unsure.commit([w(" cat", 0.9, prob=0.2)], 1.0)
    due = unsure.due([w(" cat", 0.9, prob=0.2)], 1.0)
    assert due == pytest.approx(1.9, abs=0.031)  # its maximum
    _commits_first_at(unsure, [w(" cat", 0.9, prob=0.2)], due)
    never = DynamicLookahead(threshold=1.01, sure=1.01, max_ms=1e9)  # due at its maximum, found at once
    never.commit([w(" cat", 0.9)], 1.0)
    assert never.due([w(" cat", 0.9)], 1.0) == pytest.approx(0.9 + 1e6, abs=0.031)
    assert p.due([w(" cat...", 0.9)], 2.0) is None and p.due([], 2.0) is None  # cut off; none waiting
    assert p.due([w(" ever", 0.0, start=0.0)], 2.0) is None  # no frames: never due on its own


def test_a_fixed_lookahead_is_due_its_lookahead_after_the_word():
    f = FixedLookahead(500)
    words = [w(" clyde", 1.0), w(" dean", 1.3)]
    assert f.commit(words, 1.2) == 0
    assert f.due(words, 1.2) == pytest.approx(1.5)
    _commits_first_at(f, words, 1.5)
