"""The tag language: plain text with stage directions, or a subset of SSML.

Grammar (whitespace inside brackets is free; names are case-insensitive)::

    script   := ( text | tag | ssml )*
    tag      := "[" name [ " " arg ] "]"         opens a style, or is an event
              | "[/" name "]"                     closes the style of that name
    name     := style | event
    style    := excited | calm | sad | whisper | slow | fast | loud | soft | emphasis
    event    := pause [ number ( "ms" | "s" ) ]   silence (default 500 ms, at most 10 s)
              | laugh | sigh                      a short non-verbal sound
    ssml     := "<speak>" | "</speak>" | "<s>" | "</s>" | "<p>" | "</p>"
              | "<break" [ time="N(ms|s)" | strength="none|x-weak|weak|medium|strong|x-strong" ] "/>"
              | "<prosody" [ rate=R ] [ pitch=P ] [ volume=V ] ">" ... "</prosody>"
              | "<emphasis" [ level="strong|moderate|reduced" ] ">" ... "</emphasis>"
    R        := x-slow | slow | medium | fast | x-fast | N%        (N% of normal speed)
    P        := x-low | low | medium | high | x-high | (+|-)Nst | (+|-)N%
    V        := silent | x-soft | soft | medium | loud | x-loud | (+|-)NdB

A style lasts until its closing tag when one follows, otherwise to the end of its sentence.
Styles nest: rates multiply, pitch and gain add. An unknown tag is dropped with a warning and
the text around it is still spoken; markup that does not parse is read as text. The parser
never raises on any input.
"""
from __future__ import annotations

import html
import logging
import math
import re
from dataclasses import dataclass, field, replace

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Style:
    """Acoustic controls; the synthesizer maps each onto a real control."""

    rate: float = 1.0  # duration multiplier: > 1 is slower
    pitch: float = 0.0  # semitones
    gain_db: float = 0.0
    expressive: float = 1.0  # multiplier on the voice's noise scales
    whisper: bool = False
    emphasis: bool = False

    def then(self, o: Style) -> Style:
        return Style(self.rate * o.rate, self.pitch + o.pitch, self.gain_db + o.gain_db,
                     self.expressive * o.expressive, self.whisper or o.whisper, self.emphasis or o.emphasis)


NEUTRAL = Style()
STYLES = {
    "excited": Style(rate=0.9, pitch=2.0, gain_db=2.0, expressive=1.3),
    "calm": Style(rate=1.1, pitch=-1.0, gain_db=-2.0, expressive=0.6),
    "sad": Style(rate=1.2, pitch=-2.0, gain_db=-4.0, expressive=0.7),
    "whisper": Style(whisper=True, gain_db=-3.0),
    "slow": Style(rate=1.35),
    "fast": Style(rate=0.7),
    "loud": Style(gain_db=6.0),
    "soft": Style(gain_db=-6.0),
    "emphasis": Style(rate=1.15, pitch=1.5, gain_db=3.0, emphasis=True),
}
EVENTS = ("pause", "laugh", "sigh")
DEFAULT_PAUSE_MS = 500.0
MAX_PAUSE_MS = 10_000.0


@dataclass(frozen=True)
class Speech:
    text: str
    style: Style = NEUTRAL


@dataclass(frozen=True)
class Pause:
    ms: float


@dataclass(frozen=True)
class Sound:
    kind: str  # "laugh" or "sigh"
    style: Style = NEUTRAL


@dataclass
class Script:
    sentences: list[list[Speech | Pause | Sound]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def plain(self) -> str:
        """The words to be spoken, without markup."""
        return " ".join(" ".join(p.text.split()) for s in self.sentences for p in s if isinstance(p, Speech)).strip()


_TOKEN = re.compile(
    r"\[\s*(?P<bclose>/?)\s*(?P<bname>[A-Za-z][\w-]*)\s*(?P<barg>[^\[\]<>]*?)\s*\]"
    r"|<\s*(?P<sclose>/?)\s*(?P<sname>[A-Za-z][\w:-]*)(?P<sattrs>(?:\s+[^<>]*?)?)\s*(?P<selfclose>/?)\s*>"
)
_ATTR = re.compile(r"([\w:-]+)\s*=\s*(?:\"([^\"]*)\"|'([^']*)'|([^\s\"'>]+))")
SENTENCE_END = re.compile(r"(?<=[.!?…])[\"')\]]*\s+")


@dataclass
class _Tok:
    kind: str  # "text", "open", "close", "event", "break", "boundary"
    name: str = ""
    value: object = None
    closed: bool = False  # an "open" with a matching close later


def parse(text: str) -> Script:
    """Parse tagged text into sentences of styled pieces. Never raises."""
    script = Script()
    toks = _tokens(text if isinstance(text, str) else str(text), script.warnings)
    _match(toks, script.warnings)
    _walk(toks, script)
    for w in script.warnings:
        log.warning("%s", w)
    return script


def _tokens(text: str, warnings: list[str]) -> list[_Tok]:
    out: list[_Tok] = []
    pos = 0
    for m in _TOKEN.finditer(text):
        if m.start() > pos:
            out.append(_Tok("text", value=text[pos:m.start()]))
        pos = m.end()
        if m.group("bname") is not None:
            out.extend(_bracket(m.group("bclose"), m.group("bname").lower(), m.group("barg"), m.group(0), warnings))
        else:
            out.extend(_ssml(m.group("sclose"), m.group("sname").lower(), m.group("sattrs") or "",
                             bool(m.group("selfclose")), m.group(0), warnings))
    if pos < len(text):
        out.append(_Tok("text", value=text[pos:]))
    return out


def _bracket(close: str, name: str, arg: str, raw: str, warnings: list[str]) -> list[_Tok]:
    if name in STYLES:
        return [_Tok("close" if close else "open", "[" + name, STYLES[name])]
    if name == "pause" and not close:
        return [_Tok("break", value=_pause_ms(arg, raw, warnings))]
    if name in ("laugh", "sigh") and not close:
        return [_Tok("event", name)]
    warnings.append(f"unknown tag {raw!r} dropped; its text is still spoken")
    return []


def _pause_ms(arg: str, raw: str, warnings: list[str]) -> float:
    if not arg.strip():
        return DEFAULT_PAUSE_MS
    ms = _duration_ms(arg)
    if ms is None:
        warnings.append(f"cannot read the length in {raw!r}; pausing {DEFAULT_PAUSE_MS:.0f} ms")
        return DEFAULT_PAUSE_MS
    return ms


def _duration_ms(s: str) -> float | None:
    m = re.fullmatch(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s)?\s*", s, re.I)
    if not m:
        return None
    v = float(m.group(1)) * (1000.0 if (m.group(2) or "ms").lower() == "s" else 1.0)
    return min(v, MAX_PAUSE_MS)


_BREAK_STRENGTH = {"none": 0.0, "x-weak": 100.0, "weak": 200.0, "medium": 400.0, "strong": 700.0, "x-strong": 1000.0}
_RATE = {"x-slow": 1.6, "slow": 1.3, "medium": 1.0, "fast": 0.8, "x-fast": 0.65}
_PITCH = {"x-low": -4.0, "low": -2.0, "medium": 0.0, "high": 2.0, "x-high": 4.0}
_VOLUME = {"silent": -60.0, "x-soft": -10.0, "soft": -6.0, "medium": 0.0, "loud": 6.0, "x-loud": 10.0}
_LEVEL = {"strong": STYLES["emphasis"].then(Style(gain_db=2.0)), "moderate": STYLES["emphasis"],
          "none": NEUTRAL, "reduced": Style(rate=0.95, gain_db=-3.0)}


def _ssml(close: str, name: str, attrs: str, selfclose: bool, raw: str, warnings: list[str]) -> list[_Tok]:
    a = {m.group(1).lower(): next(g for g in m.groups()[1:] if g is not None) for m in _ATTR.finditer(attrs)}
    if name == "speak":
        return []
    if name in ("s", "p"):
        return [_Tok("boundary")]
    if name == "break" and not close:
        ms = _duration_ms(a["time"]) if "time" in a else _BREAK_STRENGTH.get(a.get("strength", "medium").lower())
        if ms is None:
            warnings.append(f"cannot read {raw!r}; pausing {DEFAULT_PAUSE_MS:.0f} ms")
            ms = DEFAULT_PAUSE_MS
        return [_Tok("break", value=ms)]
    if name in ("prosody", "emphasis"):
        if close:
            return [_Tok("close", "<" + name)]
        style = _prosody(a, raw, warnings) if name == "prosody" else _LEVEL.get(a.get("level", "moderate").lower())
        if style is None:
            warnings.append(f"unknown emphasis level in {raw!r}; using moderate")
            style = STYLES["emphasis"]
        return [] if selfclose else [_Tok("open", "<" + name, style)]
    warnings.append(f"unsupported SSML element {raw!r} dropped; its text is still spoken")
    return []


def _prosody(a: dict, raw: str, warnings: list[str]) -> Style:
    style = NEUTRAL
    for key, field_name, table, read in (("rate", "rate", _RATE, _rate), ("pitch", "pitch", _PITCH, _semitones),
                                         ("volume", "gain_db", _VOLUME, _decibels)):
        if key not in a:
            continue
        v = a[key].strip().lower()
        x = table.get(v, None)
        x = read(v) if x is None else x
        if x is None:
            warnings.append(f"cannot read {key}={a[key]!r} in {raw!r}; ignored")
            continue
        style = replace(style, **{field_name: x})
    return style


def _number(v: str, unit: str) -> float | None:
    m = re.fullmatch(r"([+-]?(?:\d+(?:\.\d*)?|\.\d+))\s*" + unit, v)
    return float(m.group(1)) if m else None


def _rate(v: str) -> float | None:
    pct = _number(v, "%")
    return 100.0 / min(max(pct, 25.0), 400.0) if pct is not None and pct > 0 else None


def _semitones(v: str) -> float | None:
    st = _number(v, "st")
    if st is not None:
        return max(-12.0, min(12.0, st))
    pct = _number(v, "%")
    return max(-12.0, min(12.0, 12.0 * math.log2(max(1.0 + pct / 100.0, 0.1)))) if pct is not None else None


def _decibels(v: str) -> float | None:
    db = _number(v, "db")
    return max(-60.0, min(20.0, db)) if db is not None else None


def _match(toks: list[_Tok], warnings: list[str]) -> None:
    """Mark each open tag that a later close of the same name ends; drop stray closes."""
    open_idx: list[int] = []
    for i, t in enumerate(toks):
        if t.kind == "open":
            open_idx.append(i)
        elif t.kind == "close":
            j = next((k for k in reversed(open_idx) if toks[k].name == t.name), None)
            if j is None:
                warnings.append(f"closing tag for {t.name.lstrip('[<')!r} with no opening tag; ignored")
                t.kind = "stray"
            else:
                toks[j].closed = True
                open_idx.remove(j)
                t.value = j


def _walk(toks: list[_Tok], script: Script) -> None:
    active: list[tuple[int, Style, bool]] = []  # (open token index, style, closed later)
    sentence: list = []

    def style() -> Style:
        s = NEUTRAL
        for _, st, _ in active:
            s = s.then(st)
        return s

    def end_sentence():
        nonlocal sentence
        if any(not isinstance(p, Speech) or p.text.strip() for p in sentence):
            script.sentences.append(_merge(sentence))
        sentence = []
        active[:] = [a for a in active if a[2]]

    for i, t in enumerate(toks):
        if t.kind == "text":
            parts = SENTENCE_END.split(html.unescape(t.value))
            for k, part in enumerate(parts):
                if k:
                    end_sentence()
                if part:
                    sentence.append(Speech(part, style()))
        elif t.kind == "open":
            active.append((i, t.value, t.closed))
        elif t.kind == "close":
            active[:] = [a for a in active if a[0] != t.value]
        elif t.kind == "break":
            sentence.append(Pause(t.value))
        elif t.kind == "event":
            sentence.append(Sound(t.name, style()))
        elif t.kind == "boundary":
            end_sentence()
    end_sentence()


def _merge(pieces: list) -> list:
    """Join neighbouring text of one style; drop blank text; trim each sentence."""
    out: list = []
    for p in pieces:
        if isinstance(p, Speech) and out and isinstance(out[-1], Speech) and out[-1].style == p.style:
            out[-1] = Speech(out[-1].text + p.text, p.style)
        else:
            out.append(p)
    return [Speech(" ".join(p.text.split()), p.style) if isinstance(p, Speech) else p
            for p in out if not isinstance(p, Speech) or p.text.strip()]
