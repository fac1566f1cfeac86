"""Add stage directions to plain text: a mood per sentence, emphasis, pauses and laughs.

The mood comes from the bundled SmolLM2-135M-Instruct, prompt-based: a few labelled lines, then
the sentence, and the model's log-probability of each label is compared after subtracting the
same label's log-probability for an empty line (calibration: a small model has strong label
priors). Scoring the five labels is one batched pass after a cached prompt; nothing is generated,
so the output is always a valid tag. Without the LLM, a small lexicon and the punctuation decide.
Word-level marks (capitals → emphasis, "..." → pause, "haha" → laugh) are rules in both modes.
"""
from __future__ import annotations

import logging
import re

from .tags import SENTENCE_END, parse

log = logging.getLogger(__name__)

MOODS = ("neutral", "excited", "calm", "sad", "whisper")
_SHOTS = (
    ("Wow, we actually won the whole thing!", "excited"),
    ("I'm sorry, your flight has been cancelled.", "sad"),
    ("Take a deep breath and relax.", "calm"),
    ("Don't tell anyone, but I have a secret.", "whisper"),
    ("The meeting is at three o'clock.", "neutral"),
)
_PROMPT = "Label how each line should be spoken: " + ", ".join(MOODS[:-1]) + f" or {MOODS[-1]}.\n\n" + "".join(
    f"Line: {a}\nLabel: {b}\n\n" for a, b in _SHOTS) + "Line:"

_LEXICON = {
    "excited": {"wow", "amazing", "awesome", "fantastic", "great", "congratulations", "hooray", "yay", "incredible",
                "won", "win", "excited", "wonderful", "brilliant"},
    "sad": {"sorry", "unfortunately", "sadly", "miss", "lost", "died", "passed", "afraid", "regret", "failed",
            "cancelled", "canceled", "sad", "alas"},
    "calm": {"relax", "calm", "breathe", "gently", "slowly", "easy", "rest", "peaceful", "fine"},
    "whisper": {"secret", "shh", "shhh", "quiet", "quietly", "whisper", "sleeping"},
}
_WORD = re.compile(r"[A-Za-z']+")
_CAPS = re.compile(r"(?<![\w\[])([A-Z]{2,}(?:'[A-Z]+)?)(?![\w\]])")
_ELLIPSIS = re.compile(r"\s*(?:\.\.\.|…)\s*(?=\w)")
_LAUGH = re.compile(r"\b(?:ha(?:ha)+|lol|hehe+)\b[!.]*", re.I)
_KEEP_CAPS = {"I", "OK", "TV", "USA", "UK", "AI", "ID"}


class Tagger:
    def __init__(self, lm=None, use_llm: bool = True, device: str = "cpu"):
        """`lm`: a loaded CausalLM to share (the reranker's); else the bundled one is loaded when
        `use_llm`, and a missing model falls back to the rules with a warning."""
        self.lm = lm
        if lm is None and use_llm:
            try:
                from asr.llm.load import load_llm

                self.lm = load_llm(None, device)
            except (FileNotFoundError, ImportError) as e:
                log.warning("tagger: no LLM (%s); using the rules", e)
        self._prior = None

    @property
    def uses_llm(self) -> bool:
        return self.lm is not None

    def tag(self, text: str) -> str:
        """Plain text → tagged text. Text that already has tags is returned as it is."""
        if parse(text).plain() != " ".join(text.split()):
            return text
        out = []
        text = _ELLIPSIS.sub(" [pause 300ms] ", text)  # a trailing-off inside a turn is a pause, not an end
        for sentence in (s for s in SENTENCE_END.split(text.strip()) if s.strip()):
            body = _word_marks(sentence)
            words = parse(body).plain()
            mood = self.mood(words) if _WORD.search(words) else "neutral"
            out.append(body if mood == "neutral" else f"[{mood}] {body}")
        return " ".join(out)

    def mood(self, sentence: str) -> str:
        return self._llm_mood(sentence) if self.lm is not None else rule_mood(sentence)

    def _llm_mood(self, sentence: str) -> str:
        labels = [f" {m}" for m in MOODS]
        if self._prior is None:
            self._prior = self._label_scores(" N/A")
        scores = self._label_scores(" " + " ".join(sentence.split()))
        calibrated = [s - p for s, p in zip(scores, self._prior)]
        return labels[max(range(len(labels)), key=calibrated.__getitem__)].strip()

    def _label_scores(self, line: str) -> list[float]:
        # the line is in every text, so its own log-prob is a shared offset; the prompt is cached
        texts = [f"{line}\nLabel: {m}" for m in MOODS]
        return [s.logprob for s in self.lm.score(texts, prefix=_PROMPT, end="\n")]


def rule_mood(sentence: str) -> str:
    words = {w.lower() for w in _WORD.findall(sentence)}
    hits = {m: len(words & lex) for m, lex in _LEXICON.items()}
    best = max(hits, key=hits.get)
    if hits[best]:
        return best
    return "excited" if sentence.rstrip().endswith("!") else "neutral"


def _word_marks(sentence: str) -> str:
    s = _LAUGH.sub(" [laugh] ", sentence)
    s = _CAPS.sub(lambda m: m.group(1) if m.group(1) in _KEEP_CAPS else f"[emphasis]{m.group(1).lower()}[/emphasis]", s)
    return " ".join(s.split())
