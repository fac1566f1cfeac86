from hypothesis import given, settings
from hypothesis import strategies as st

from tts.tags import MAX_PAUSE_MS, NEUTRAL, STYLES, Pause, Sound, Speech, parse


def _styles(text):
    return [(p.text, p.style) for s in parse(text).sentences for p in s if isinstance(p, Speech)]


def test_a_style_lasts_to_the_end_of_its_sentence():
    assert _styles("Hello there. [excited] Great news! Back to normal.") == [
        ("Hello there.", NEUTRAL), ("Great news!", STYLES["excited"]), ("Back to normal.", NEUTRAL)]


def test_a_closed_style_spans_sentences_and_ends_at_its_close():
    got = _styles("[slow]One. Two.[/slow] Three.")
    assert got == [("One.", STYLES["slow"]), ("Two.", STYLES["slow"]), ("Three.", NEUTRAL)]


def test_styles_nest_and_compose():
    (_, outer), (_, both), (_, after) = _styles("[loud] a [slow]b[/slow] c")
    assert outer == STYLES["loud"]
    assert both.gain_db == 6.0 and both.rate == STYLES["slow"].rate
    assert after == STYLES["loud"]


def test_events_pauses_and_sounds():
    s = parse("Wait [pause 400ms] then [pause 1.5s] go [pause] [laugh] [sigh].").sentences[0]
    assert [p.ms for p in s if isinstance(p, Pause)] == [400.0, 1500.0, 500.0]
    assert [p.kind for p in s if isinstance(p, Sound)] == ["laugh", "sigh"]
    assert parse("[pause 99s]").sentences[0] == [Pause(MAX_PAUSE_MS)]


def test_ssml_subset():
    sc = parse("<speak>Hi <break time='1s'/><break strength=\"weak\"/> <prosody rate=\"50%\" pitch=\"+3st\" "
               "volume=\"loud\">slow &amp; loud</prosody> <emphasis level=\"moderate\">yes</emphasis></speak>")
    pieces = sc.sentences[0]
    assert pieces[1:3] == [Pause(1000.0), Pause(200.0)]
    prosody = pieces[3]
    assert prosody.text == "slow & loud"
    assert (prosody.style.rate, prosody.style.pitch, prosody.style.gain_db) == (2.0, 3.0, 6.0)
    assert pieces[4].style == STYLES["emphasis"] and not sc.warnings


def test_ssml_pitch_percent_and_named_values():
    (_, a), = _styles('<prosody pitch="+100%" rate="x-fast" volume="-3dB">up</prosody>')
    assert abs(a.pitch - 12.0) < 1e-9 and a.rate < 1 and a.gain_db == -3.0


def test_unknown_and_malformed_markup_warns_and_keeps_the_text():
    sc = parse("[foo]bar [/calm] [pause xx] <blink>x</blink> [ unclosed < tag")
    assert sc.plain() == "bar x [ unclosed < tag"
    joined = " ".join(sc.warnings)
    for what in ("[foo]", "calm", "[pause xx]", "<blink>"):
        assert what in joined


def test_bad_prosody_value_is_ignored_with_a_warning():
    sc = parse('<prosody rate="zippy" volume="+2dB">x</prosody>')
    assert sc.sentences[0][0].style.rate == 1.0 and sc.sentences[0][0].style.gain_db == 2.0
    assert any("zippy" in w for w in sc.warnings)


@given(st.text())
@settings(max_examples=300, deadline=None)
def test_any_text_parses(text):
    sc = parse(text)
    for s in sc.sentences:
        assert s
        for p in s:
            if isinstance(p, Speech):
                assert p.text.strip() == p.text and p.text
            elif isinstance(p, Pause):
                assert 0.0 <= p.ms <= MAX_PAUSE_MS


_MARKUP = st.lists(st.sampled_from(
    ["[", "]", "/", "<", ">", "=", '"', "'", " ", "ms", "s", "0.5", "400", "pause", "excited", "whisper",
     "emphasis", "laugh", "prosody", "break", "speak", "time", "rate", "pitch", "volume", "st", "%", "dB",
     "hello", ".", "!", "?", "&amp;", "&", "\n"]), max_size=40).map("".join)


@given(_MARKUP)
@settings(max_examples=500, deadline=None)
def test_markup_soup_parses(text):
    sc = parse(text)
    assert isinstance(sc.plain(), str)


@given(st.lists(st.from_regex(r"[A-Za-z]{1,8}", fullmatch=True), min_size=1, max_size=12))
def test_plain_words_are_kept(words):
    text = " ".join(words) + "."
    assert parse(text).plain() == text
    assert parse("[calm] " + text).plain() == text
