"""The arbitrator's inputs, read from a stream's state when the recognizer's latest pass has encoded.

Acoustic: the last ``FRAMES`` Whisper encoder states of that pass (2 s at
20 ms a frame), not recomputed; shorter windows are left-padded with zeros and
masked. Text (from the previous pass: the endpointer is asked before this
pass's decoder runs): what the transcript so far says about being finished — its final
punctuation and that token's probability, the decoder's end-of-text
probability, how long ago the decoder closed its segment, the last two words
(hashed; the model learns that "the" or "and" rarely end a turn), and the
pause and utterance lengths, which the first pass knows anyway.
"""
from __future__ import annotations

import math
import zlib
from dataclasses import dataclass

import numpy as np
import torch

FRAMES = 100  # encoder frames before the decision: 2 s
BUCKETS = 2048  # hashed word vocabulary
NUMERIC = 12
_PUNCT = (".", "?", "!", ",")


@dataclass(frozen=True)
class Features:
    enc: np.ndarray  # (FRAMES, d) float16, zeros where mask is 0
    mask: np.ndarray  # (FRAMES,) 1 where there is a real frame
    numeric: np.ndarray  # (NUMERIC,) float32
    words: np.ndarray  # (2,) int64: hashed last and second-to-last word (0: none)


def word_bucket(word: str) -> int:
    key = word.strip().lower().strip(".,!?;:\"'-…")
    return 0 if not key else 1 + zlib.crc32(key.encode()) % (BUCKETS - 1)


def numeric(text: str, last_prob: float, eot_prob: float, closed_gap: float, pause_ms: float,
            utterance_s: float) -> np.ndarray:
    t = text.strip()
    ends = [float(t.endswith(p)) for p in _PUNCT]
    other = float(bool(t) and not any(ends) and not t[-1].isalnum())
    n_words = len(t.split())
    return np.array(ends + [other, last_prob, eot_prob, min(closed_gap, 2.0), math.log1p(n_words) / 3,
                            min(pause_ms, 3000.0) / 1000, min(utterance_s, 30.0) / 10, float(n_words == 0)],
                    np.float32)


def transcript(st) -> str:
    """Committed and tentative words of a StreamState."""
    return ("".join(w.w for w in st.words) + "".join(w.text for w in st.tentative)).strip()


def from_state(st, pause_ms: float, utterance_s: float) -> Features | None:
    """Features of a StreamState (asr.streaming): the encoder states of its latest pass
    (``enc``), the transcript and ``signals`` of the last pass whose decoder has run."""
    if st.enc is None:
        return None
    return from_parts(st.enc, transcript(st), st.signals, pause_ms, utterance_s)


def from_parts(enc: torch.Tensor, text: str, sig, pause_ms: float, utterance_s: float) -> Features:
    """``sig``: asr.streaming.EndSignals, or None before the utterance's first decoded pass."""
    enc = enc[-FRAMES:].float().numpy()
    pad = FRAMES - len(enc)
    mask = np.concatenate([np.zeros(pad, np.float32), np.ones(len(enc), np.float32)])
    enc = np.concatenate([np.zeros((pad, enc.shape[1]), np.float32), enc]).astype(np.float16)
    last_prob, eot_prob, closed_gap = (sig.last_prob, sig.eot_prob, sig.closed_gap) if sig else (0.0, 0.0, 0.0)
    words = text.split()
    ids = np.array([word_bucket(words[-1]) if words else 0, word_bucket(words[-2]) if len(words) > 1 else 0])
    return Features(enc, mask, numeric(text, last_prob, eot_prob, closed_gap, pause_ms, utterance_s), ids)


def collate(feats: list[Features]) -> dict[str, torch.Tensor]:
    return {"enc": torch.from_numpy(np.stack([f.enc for f in feats])).float(),
            "mask": torch.from_numpy(np.stack([f.mask for f in feats])),
            "numeric": torch.from_numpy(np.stack([f.numeric for f in feats])),
            "words": torch.from_numpy(np.stack([f.words for f in feats])).long()}
