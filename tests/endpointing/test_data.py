"""Turn-end cases: pauses go inside sentences, without clicks, and the true end comes from the audio."""
import numpy as np

from endpointing.data import SR, commands, gaps, make_case, speech_bounds, split


def tone_words(n=6, word=0.3, gap=0.12):
    """A fake clip: n tone bursts ("words") with gaps, 0.5 s of quiet either side, and their times."""
    rng = np.random.default_rng(0)
    parts, words, t = [np.zeros(int(0.5 * SR), np.float32)], [], 0.5
    for k in range(n):
        x = np.arange(int(word * SR)) / SR
        parts += [(0.3 * np.sin(2 * np.pi * (150 + 20 * k) * x) * np.hanning(len(x))).astype(np.float32),
                  (rng.normal(0, 1e-4, int(gap * SR))).astype(np.float32)]
        words.append((f" w{k}" + ("." if k == 2 else ""), t, t + word))
        t += word + gap
    parts.append(np.zeros(int(0.5 * SR), np.float32))
    return np.concatenate(parts), words


def test_gaps_skip_sentence_ends_and_the_edges():
    _, words = tone_words()
    assert gaps(words) == [1, 3]  # not after "w2." and not before the last word


def test_case_inserts_the_pause_at_a_quiet_gap_and_keeps_the_true_end():
    audio, words = tone_words()
    rng = np.random.default_rng(1)
    c = make_case("x", audio, "text", words, rng, (0.6, 0.6), trailing=2.0)
    assert len(c.pauses) == 1
    s, e = c.pauses[0]
    assert abs(e - s - 0.6) < 1e-3
    seg = c.audio[int(s * SR) + 10: int(e * SR) - 10]
    assert np.max(np.abs(seg)) == 0.0  # the inserted pause is silence
    # the true end is the audio's own: the speech in the case ends where the case says
    _, end = speech_bounds(c.audio)
    assert abs(end - c.end) < 0.02
    assert abs(len(c.audio) / SR - c.end - 2.0) < 0.1
    # no click at the cut: sample-to-sample steps stay as small as inside the tones
    step = np.max(np.abs(np.diff(c.audio)))
    assert step <= np.max(np.abs(np.diff(audio))) * 1.05
    # the word times moved with the pause
    later = [w for w in c.words if w[1] >= e]
    assert later and all(w[1] >= e for w in later)


def test_noise_instead_of_silence_is_quiet():
    audio, words = tone_words()
    c = make_case("x", audio, "t", words, np.random.default_rng(2), None, noise=True)
    assert not c.pauses
    tail = c.audio[-SR:]
    assert 0 < np.sqrt(np.mean(tail ** 2)) < 10 ** (-50 / 20)


def test_split_is_stable_and_holds_out_about_a_fifth():
    ids = [f"arctic/a{k:04d}" for k in range(2000)]
    held = [split(i) == "test" for i in ids]
    assert 0.17 < np.mean(held) < 0.23
    assert held == [split(i) == "test" for i in ids]


def test_commands_are_seeded_and_pause_inside():
    a, b = commands(30, seed=3), commands(30, seed=3)
    assert a == b and a != commands(30, seed=4)
    paused = [t for t, p in a if p]
    assert 10 <= len(paused) <= 28
    for t in paused:
        assert "[pause " in t and not t.startswith("[pause") and not t.rstrip().endswith("]")
