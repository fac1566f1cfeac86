import numpy as np
import pytest

from tts.effects import Local, apply

from .conftest import duration, median_f0, rms_db, voiced_fraction

SENTENCE = "The quick brown fox jumps over the lazy dog near the river bank."


@pytest.fixture(scope="module")
def neutral(synth):
    return synth.synthesize(SENTENCE)[0]


def _say(synth, tagged):
    audio, sr = synth.synthesize(tagged)
    assert audio.dtype == np.float32 and sr == synth.sample_rate == 22050
    return audio


def test_api_returns_float32_and_rate(synth, neutral):
    assert neutral.dtype == np.float32 and 2.0 < len(neutral) / 22050 < 6.0
    assert np.abs(neutral).max() <= 1.0
    empty, sr = synth.synthesize("")
    assert len(empty) == 0 and sr == 22050
    assert len(synth.synthesize("[laugh]")[0]) > 0
    assert len(synth.synthesize("[ << ]")[0]) == 0  # nothing speakable, no crash


def _typical_duration(synth, text, draws=3):
    """The voice's durations are drawn at random on every call: compare medians, not single draws."""
    return float(np.median([duration(_say(synth, text), 22050) for _ in range(draws)]))


# the medians measured over 8 draws: slow 1.22-1.26, fast 0.74-0.79
@pytest.mark.parametrize("tag,lo,hi", [("slow", 1.15, 1.6), ("fast", 0.6, 0.88)])
def test_rate_changes_duration(synth, tag, lo, hi):
    ratio = _typical_duration(synth, f"[{tag}] {SENTENCE}") / _typical_duration(synth, SENTENCE)
    assert lo < ratio < hi


@pytest.mark.parametrize("tag,semitones", [('<prosody pitch="+4st">', 4.0), ('<prosody pitch="-4st">', -4.0)])
def test_pitch_shift_moves_median_f0_and_keeps_duration(synth, neutral, tag, semitones):
    out = _say(synth, f"{tag}{SENTENCE}</prosody>")
    ratio = median_f0(out, 22050) / median_f0(neutral, 22050)
    assert abs(12 * np.log2(ratio) - semitones) < 1.0
    # not a change of playback speed (medians of three draws: one draw's durations vary by a few %)
    shifted = _typical_duration(synth, f"{tag}{SENTENCE}</prosody>")
    assert abs(shifted / _typical_duration(synth, SENTENCE) - 1) < 0.05


@pytest.mark.parametrize("tag,lo,hi", [("loud", 4.5, 7.0), ("soft", -7.0, -4.5)])
def test_volume_changes_rms(synth, neutral, tag, lo, hi):
    assert lo < rms_db(_say(synth, f"[{tag}] {SENTENCE}"), 22050) - rms_db(neutral, 22050) < hi


def test_whisper_has_little_voicing(synth, neutral):
    assert voiced_fraction(neutral, 22050) > 0.5
    assert voiced_fraction(_say(synth, f"[whisper] {SENTENCE}"), 22050) < 0.1


def test_moods_move_pitch_rate_and_level(synth, neutral):
    excited, sad = _say(synth, f"[excited] {SENTENCE}"), _say(synth, f"[sad] {SENTENCE}")
    assert median_f0(excited, 22050) > 1.05 * median_f0(neutral, 22050) > 1.1 * median_f0(sad, 22050)
    # rate 0.9 vs 1.2, but the voice rounds each phoneme up to whole frames, so short phonemes
    # do not shrink: the measured gap is smaller than the nominal one
    assert duration(excited, 22050) < duration(sad, 22050)
    assert rms_db(excited, 22050) > rms_db(neutral, 22050) > rms_db(sad, 22050)


def test_pause_inserts_silence(synth):
    chunks = list(synth.stream("One two three. [pause 800ms] Four five six."))
    assert [c.text for c in chunks] == ["One two three.", "", "Four five six."]
    assert len(chunks[1].audio) == int(0.8 * 22050) and not chunks[1].audio.any()
    x = np.concatenate([c.audio for c in chunks])
    assert _longest_quiet(x) / 22050 >= 0.8
    assert _longest_quiet(_say(synth, "One two three. Four five six.")) / 22050 < 0.4


def _longest_quiet(x, level=1e-3):
    loud = np.flatnonzero(np.abs(x) >= level)
    return int(np.max(np.diff(np.concatenate([[-1], loud, [len(x)]]))) - 1)


def test_emphasis_is_local_rate_gain_and_pitch(synth):
    sr = 22050
    out = synth.voice.render(["Well, as far as I can tell, I", "really", "mean it, and so do they."])
    (a, b) = out.spans[1]
    y = apply(out.audio, sr, [Local(a, b, pitch=3.0, gain_db=6.0, stretch=1.3)])
    grow = len(y) - len(out.audio)
    assert abs(grow - 0.3 * (b - a)) < 0.05 * (b - a)
    before, word, after = out.audio[:a - 2000], out.audio[a:b], out.audio[b + 2000:]
    nb, nw, na = y[:a - 2000], y[a:b + grow], y[b + grow + 2000:]
    assert np.allclose(nb, before, atol=1e-6)  # untouched outside the span and its margin
    assert np.allclose(na, after, atol=1e-6)
    assert rms_db(nw, sr) - rms_db(word, sr) > 4.0
    assert 12 * np.log2(median_f0(nw, sr) / median_f0(word, sr)) > 2.0


def test_emphasis_reaches_the_word_only(synth, monkeypatch):
    import tts.synth

    seen = []
    real = tts.synth.blocks
    monkeypatch.setattr(tts.synth, "blocks", lambda audio, sr, changes: seen.append(changes) or real(audio, sr, changes))
    synth.synthesize("I [emphasis]really[/emphasis] mean it.")
    (changes,) = seen
    assert [(c.pitch, c.gain_db, round(c.stretch, 6)) for c in changes] == [(0, 0, 1), (1.5, 3.0, 1.15), (0, 0, 1)]
    (a0, b0), (a1, b1), (a2, b2) = [(c.start, c.end) for c in changes]
    assert b0 <= a1 < b1 <= a2 < b2  # consecutive spans of the one rendering


def test_stream_yields_the_first_phrase_before_rendering_the_rest(synth, monkeypatch):
    calls = []
    real = synth.voice.render
    monkeypatch.setattr(synth.voice, "render", lambda *a, **k: calls.append(1) or real(*a, **k))
    chunks = synth.stream("First sentence here. Second one. Third one.")
    first = next(chunks)
    assert len(calls) == 1 and first.text == "First sentence here." and len(first.audio) > 0
    assert [c.text for c in chunks] == ["Second one.", "Third one."] and len(calls) == 3


def test_vocoded_phrases_come_in_blocks_without_clicks(synth):
    from tts.effects import blocks

    sr = 22050
    out = synth.voice.render([SENTENCE])
    change = [Local(0, len(out.audio), pitch=3.0)]
    parts = list(blocks(out.audio, sr, change))
    assert len(parts) >= 3 and 0.3 < len(parts[0]) / sr < 0.5  # the first block is early
    y = np.concatenate(parts)
    assert len(y) == len(out.audio)
    assert 2.0 < 12 * np.log2(median_f0(y, sr) / median_f0(out.audio, sr)) < 4.0
    d = np.abs(np.diff(y))
    ordinary = np.percentile(d, 99.9)
    for cut in np.cumsum([len(p) for p in parts[:-1]]):
        assert d[cut - 110:cut + 110].max() <= ordinary  # the seams are no sharper than the speech


def test_quick_start_splits_the_opening_at_a_comma_or_after_n_words():
    from tts.synth import _opening
    from tts.tags import STYLES, Speech

    head, tail = _opening([Speech("Not at this particular case, Tom, apologized Whitmore.")], 5)
    assert [p.text for p in head] == ["Not at this particular case,"]
    assert [p.text for p in tail] == ["Tom, apologized Whitmore."]
    sad = STYLES["sad"]
    head, tail = _opening([Speech("I was about", sad), Speech("to do this when cooler judgment prevailed.")], 5)
    assert [(p.text, p.style) for p in head] == [("I was about", sad), ("to do", tail[0].style)]
    assert [p.text for p in tail] == ["this when cooler judgment prevailed."]
    assert _opening([Speech("Will we ever forget it?")], 5) == ([], [Speech("Will we ever forget it?")])


def test_quick_start_yields_the_opening_first_and_loses_nothing(synth):
    text = "I was about to do this when cooler judgment prevailed. Then I left."
    chunks = [c.text for c in synth.stream(text, quick_start=5) if c.text]
    assert chunks[0] == "I was about to do"
    assert " ".join(chunks) == text
