"""Turn-end cases built from recorded speech, for training and for the benchmark.

A case is one turn: a clip trimmed to its speech, perhaps with a pause
inserted at a word gap inside a sentence (not after sentence-final
punctuation, where stopping is a legitimate end), followed by silence or low
noise. The pause is cut at the quietest 10 ms near the gap, with short fades,
so there is no click. The true end of speech comes from the audio (the last
10 ms frame within 35 dB of the clip's peak), not from recognizer word times,
which end early. Clips are split by a hash of their id: one in five is held
out for the benchmark, the rest train the arbitrator.

Spoken commands come from templates and slot catalogues (a few patterns
expanded into many turns, as a dialogue simulator does), with pauses and
hesitations written as LTTS stage directions and rendered by the LTTS voice.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass, field

import numpy as np

SR = 16000
FADE = int(0.01 * SR)
_SENTENCE_END = (".", "?", "!", ";", ":")


@dataclass
class Case:
    id: str
    audio: np.ndarray  # 16 kHz float32: speech, inserted pauses, then the trailing silence or noise
    end: float  # true end of speech (s)
    text: str  # reference transcript
    pauses: list[tuple[float, float]] = field(default_factory=list)  # inserted mid-turn pauses (s)
    words: list[tuple[str, float, float]] = field(default_factory=list)  # recognizer words, on the case clock


def split(item_id: str) -> str:
    """'test' for one clip in five (stable), else 'train'."""
    return "test" if zlib.crc32(item_id.encode()) % 5 == 0 else "train"


def speech_bounds(audio: np.ndarray, floor_db: float = 35.0) -> tuple[float, float]:
    """First and last 10 ms frame within ``floor_db`` of the peak frame (s)."""
    n = len(audio) // 160
    if n == 0:
        return 0.0, len(audio) / SR
    db = 10 * np.log10((audio[: n * 160].astype(np.float64).reshape(n, 160) ** 2).mean(1) + 1e-12)
    loud = np.flatnonzero(db > db.max() - floor_db)
    return loud[0] * 0.01, (loud[-1] + 1) * 0.01


def trim(audio: np.ndarray, lead: float = 0.3, tail: float = 0.05) -> tuple[np.ndarray, float]:
    """The clip cut to its speech (a little lead-in kept, fades at both ends) and its end of speech (s)."""
    start, end = speech_bounds(audio)
    a = audio[max(0, int((start - lead) * SR)): int((end + tail) * SR)].copy()
    a[:FADE] *= np.linspace(0, 1, min(FADE, len(a)), dtype=np.float32)
    a[-FADE:] *= np.linspace(1, 0, min(FADE, len(a)), dtype=np.float32)
    return a, end - max(0.0, start - lead)


def gaps(words: list[tuple[str, float, float]]) -> list[int]:
    """Indices i such that a pause may go between word i and i+1: inside a sentence, two words in."""
    return [i for i in range(1, len(words) - 2) if not words[i][0].strip().endswith(_SENTENCE_END)]


def quietest(audio: np.ndarray, lo: float, hi: float) -> int:
    """Sample at the start of the quietest 10 ms frame between lo and hi (s)."""
    a, b = max(0, int(lo * SR)), min(len(audio) - 160, int(hi * SR))
    if b <= a:
        return int(np.clip((lo + hi) / 2 * SR, 0, len(audio)))
    starts = np.arange(a, b, 80)
    energy = [float(np.sum(audio[s:s + 160] ** 2)) for s in starts]
    return int(starts[int(np.argmin(energy))]) + 80


def quiet(seconds: float, rng: np.random.Generator, noise: bool) -> np.ndarray:
    """Digital silence, or white noise at about -60 dBFS."""
    n = int(seconds * SR)
    return (rng.normal(0, 10 ** (-60 / 20), n) if noise else np.zeros(n)).astype(np.float32)


def insert_pause(audio: np.ndarray, at: int, pause: np.ndarray) -> np.ndarray:
    head, tail = audio[:at].copy(), audio[at:].copy()
    f = min(FADE, len(head), len(tail))
    head[len(head) - f:] *= np.linspace(1, 0, f, dtype=np.float32)
    tail[:f] *= np.linspace(0, 1, f, dtype=np.float32)
    return np.concatenate([head, pause, tail])


def make_case(cid: str, audio: np.ndarray, text: str, words: list[tuple[str, float, float]],
              rng: np.random.Generator, pause_range: tuple[float, float] | None, trailing: float = 2.0,
              noise: bool = False, n_pauses: int = 1) -> Case:
    """Trim the clip, insert up to ``n_pauses`` mid-sentence pauses (None: none), add the trailing quiet.

    ``words`` are (word, start, end) on the untrimmed clip's clock."""
    start, _ = speech_bounds(audio)
    shift = max(0.0, start - 0.3)
    a, end = trim(audio)
    words = [(w, s - shift, e - shift) for w, s, e in words]
    words = [(w, s, min(e, end)) for w, s, e in words if s < end]
    pauses: list[tuple[float, float]] = []
    choices = gaps(words) if pause_range else []
    picked = sorted(rng.choice(choices, min(n_pauses, len(choices)), replace=False)) if choices else []
    for i in reversed(picked):  # from the end, so earlier positions stay valid
        at = quietest(a, words[i][2] - 0.05, words[i + 1][1] + 0.05)
        d = float(rng.uniform(*pause_range))
        a = insert_pause(a, at, quiet(d, rng, noise))
        t = at / SR
        end += d
        pauses = [(t, t + d)] + [(s + d, e + d) for s, e in pauses]
        words = [(w, s + d * (s >= t), e + d * (e > t)) for w, s, e in words]
    return Case(cid, np.concatenate([a, quiet(trailing, rng, noise)]), end, text, pauses, words)


# -- commands from templates -----------------------------------------------------------

TEMPLATES = [
    "set a timer for {minutes} minutes",
    "turn {onoff} the lights in the {room}",
    "what's the weather like in {city} {day}?",
    "play {song} by {artist}",
    "remind me to {task} {when}",
    "call {name} on {phone}",
    "add {item} to my shopping list",
    "how long does it take to drive to {city}?",
    "send a message to {name} saying I'll be late",
    "set the thermostat to {degrees} degrees",
    "what time is it in {city}?",
    "wake me up {when}",
]
SLOTS = {
    "minutes": ["five", "ten", "twenty", "forty five"], "onoff": ["on", "off"],
    "room": ["kitchen", "living room", "bedroom", "garage"],
    "city": ["Boston", "Paris", "Tokyo", "San Francisco", "Berlin"],
    "day": ["today", "tomorrow", "this weekend", "on Friday"],
    "song": ["yellow submarine", "clair de lune", "something new"], "artist": ["the Beatles", "Debussy", "anyone"],
    "task": ["call my mother", "water the plants", "buy milk", "book a table"],
    "when": ["tomorrow morning", "at seven thirty", "in an hour", "tonight"],
    "name": ["Alice", "David", "my sister", "Doctor Patel"], "phone": ["her mobile", "the office line"],
    "item": ["eggs and bread", "coffee", "dish soap"], "degrees": ["sixty eight", "seventy two", "twenty"],
}
HESITATIONS = ["um", "uh", "let me think", "hmm"]


def commands(n: int, seed: int = 0) -> list[tuple[str, bool]]:
    """``n`` (tagged text, has a mid-turn pause) pairs: about two in three pause inside the
    command, sometimes after a hesitation ("set a timer for um [pause 700ms] ten minutes")."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        text = TEMPLATES[rng.integers(len(TEMPLATES))]
        text = text.format(**{k: v[rng.integers(len(v))] for k, v in SLOTS.items()})
        words = text.split()
        if rng.random() < 2 / 3 and len(words) > 3:
            i = int(rng.integers(1, len(words) - 1))
            hes = f" {HESITATIONS[rng.integers(len(HESITATIONS))]}," if rng.random() < 0.4 else ""
            ms = int(rng.uniform(300, 1400))
            text = " ".join(words[:i]) + f"{hes} [pause {ms}ms] " + " ".join(words[i:])
            out.append((text, True))
        else:
            out.append((text, False))
    return out


def word_times(audio: dict[str, np.ndarray], lm) -> dict[str, list[tuple[str, float, float]]]:
    """(word, start, end) per clip from the offline recognizer (same model)."""
    from asr.recognizer import Recognizer, RecognizerConfig

    rec = Recognizer(RecognizerConfig(device=str(lm.device)), loaded=lm)
    return {i: [(w.word, w.start, w.end) for w in t.words] for i, t in rec._run((k, iter([a])) for k, a in audio.items())}


def dev_cases(items, lm, seed: int, pause_range: tuple[float, float], trailing: float = 2.0,
              n_pauses=lambda rng, item: 1) -> list[Case]:
    """One case per dev clip (bench.manifest Items): noise and silence alternate as the quiet."""
    from asr.audio import read_audio

    rng = np.random.default_rng(seed)
    audio = {it.id: read_audio(it.audio) for it in items}
    words = word_times(audio, lm)
    return [make_case(it.id, audio[it.id], it.text, words[it.id], rng, pause_range, trailing, noise=bool(k % 2),
                      n_pauses=n_pauses(rng, it)) for k, it in enumerate(items)]


def command_cases(n: int, seed: int, trailing: float = 2.0) -> list[Case]:
    """Commands rendered by the LTTS voice (needs the tts extra), at 16 kHz."""
    from tts.synth import Synthesizer, loopback
    from tts.tags import parse

    synth = Synthesizer()
    rng = np.random.default_rng(seed)
    out = []
    for k, (text, _) in enumerate(commands(n, seed)):
        audio, sr = synth.synthesize(text)
        a, end = trim(loopback(audio, sr, pad_s=0.0))
        out.append(Case(f"command/{k}", np.concatenate([a, quiet(trailing, rng, bool(k % 2))]), end,
                        parse(text).plain()))
    return out
