"""A trained score for whether a tentative word is already read as it will end.

DynamicLookahead's hand rule looks at one word's probability (TentativeWord.prob) and how much
audio follows it. This logistic model also reads its neighbours (the next word's
probability, the least sure word before it), how long the reading has held and
the word's length, and gives the probability that the word's present reading is
the one a slow policy (fixed 1500 ms) ends with. It is trained on logs of passes
(`speechfront bench lookahead --train`, bench/passlog.py) from dev clips that
the streaming benchmark does not use, one model per recognizer model, shipped
in asr/weights/ with the rule's settings chosen on the same logs (the threshold,
the longest wait, the audio an utterance's first words need).
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

WEIGHTS = Path(__file__).parent / "weights"
NAMES = ("log_prob", "right_s", "held_s", "next_log_prob", "last", "letters", "first", "before_log_prob",
         "log_prob*right_s", "log_prob*held_s", "right_s^2")


def _log(p: float) -> float:
    return math.log(max(p, 1e-4))


def features(probs: Sequence[float], lens: Sequence[int], i: int, right_s: float, held_s: float) -> list[float]:
    """Word i of a pass's uncommitted words (their probabilities, TentativeWord.prob, and letters), with
    right_s of audio after it and its reading unchanged for held_s (both capped at 2 s)."""
    lp, r, h = _log(probs[i]), min(right_s, 2.0), min(held_s, 2.0)
    nxt = _log(probs[i + 1]) if i + 1 < len(probs) else 0.0
    before = _log(min(probs[:i], default=1.0))
    return [lp, r, h, nxt, float(i + 1 == len(probs)), lens[i] / 10, float(i == 0), before, lp * r, lp * h, r * r]


@dataclass(frozen=True)
class StabilityModel:
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    weights: tuple[float, ...]
    bias: float
    threshold: float  # commit at this score or above
    trained_on: str = ""
    # the rest of the rule, chosen with the threshold on the training logs: a word commits
    # regardless at max_ms of audio after it, and the utterance's first `first_words` words
    # need first_ms after them before the score counts
    max_ms: float = 1200.0
    first_ms: float = 0.0
    first_words: int = 1

    def score(self, probs: Sequence[float], lens: Sequence[int], i: int, right_s: float, held_s: float) -> float:
        x = (np.array(features(probs, lens, i, right_s, held_s)) - self.mean) / self.scale
        return float(1 / (1 + np.exp(-(x @ np.array(self.weights) + self.bias))))

    def save(self, path: Path | str) -> None:
        Path(path).write_text(json.dumps(asdict(self) | {"features": NAMES}, indent=1) + "\n")

    @classmethod
    def load(cls, path: Path | str) -> StabilityModel:
        d = json.loads(Path(path).read_text())
        if tuple(d.pop("features")) != NAMES:
            raise ValueError(f"{path}: trained on other features than this code computes")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


@lru_cache(maxsize=None)
def load_stability(model_name: str) -> StabilityModel | None:
    """The shipped model for this recognizer model, if there is one (read once: a policy is made
    per stream)."""
    path = WEIGHTS / f"stability-{model_name}.json"
    return StabilityModel.load(path) if path.is_file() else None


def fit(x: np.ndarray, y: np.ndarray, threshold: float, l2: float = 1e-3, trained_on: str = "") -> StabilityModel:
    """Logistic regression on standardized features (L-BFGS, a light L2 penalty)."""
    if len(set(y.tolist())) < 2:
        raise ValueError("training needs words that kept their reading and words that changed")
    mean, scale = x.mean(0), x.std(0) + 1e-6
    xt, yt = torch.tensor((x - mean) / scale, dtype=torch.float64), torch.tensor(y, dtype=torch.float64)
    w = torch.zeros(x.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=500, line_search_fn="strong_wolfe")

    def loss():
        opt.zero_grad()
        v = torch.nn.functional.binary_cross_entropy_with_logits(xt @ w + b, yt) + l2 * (w ** 2).sum()
        v.backward()
        return v

    with torch.enable_grad():
        opt.step(loss)
    return StabilityModel(tuple(mean.tolist()), tuple(scale.tolist()), tuple(w.detach().tolist()),
                          float(b.detach()), threshold, trained_on)
