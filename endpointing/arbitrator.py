"""The second pass: a small model that says whether the turn is over.

It reads the recognizer's own encoder states (no second acoustic model) and
features of the transcript (endpointing/features.py). The shipped model is an
``Ensemble``: a few seeds of one small ``Arbitrator`` (about 84 k parameters
each), averaged in logit, because one model's most confident false accepts on
mid-turn pauses are not shared by the other seeds. The ``inputs`` switch
trains the acoustic-only and text-only ablations with the same code (the pause
length is a first-pass fact and stays in both).
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import torch
from torch import nn

from .features import BUCKETS, NUMERIC, Features, collate

WEIGHTS = Path(__file__).resolve().parent / "weights"
_PAUSE = slice(9, 11)  # numeric features that stay in an acoustic-only model: pause, utterance length


def weights_path(model_name: str, inputs: str = "both") -> Path:
    """The shipped weights; the acoustic-only and text-only ablations sit beside them."""
    return WEIGHTS / f"arbitrator-{model_name}{'' if inputs == 'both' else '-' + inputs}.pt"


class _Scorer(nn.Module):
    @torch.inference_mode()
    def prob(self, feats: list[Features]) -> list[float]:
        self.eval()
        return torch.sigmoid(self(**collate(feats))).tolist()


class Arbitrator(_Scorer):
    def __init__(self, d_enc: int = 384, d: int = 48, emb: int = 16, inputs: str = "both"):
        super().__init__()
        if inputs not in ("both", "acoustic", "text"):
            raise ValueError(f"inputs must be both, acoustic or text, not {inputs!r}")
        self.config = {"d_enc": d_enc, "d": d, "emb": emb, "inputs": inputs}
        self.inputs = inputs
        self.proj = nn.Sequential(nn.LayerNorm(d_enc), nn.Linear(d_enc, d), nn.GELU())
        self.conv = nn.Sequential(nn.Conv1d(d, d, 5, stride=2, padding=2), nn.GELU(),
                                  nn.Conv1d(d, d, 5, stride=2, padding=2), nn.GELU())
        self.words = nn.Embedding(BUCKETS, emb)
        self.text = nn.Sequential(nn.Linear(2 * emb + NUMERIC, d), nn.GELU())
        self.head = nn.Sequential(nn.Linear(3 * d, d), nn.GELU(), nn.Dropout(0.1), nn.Linear(d, 1))

    def forward(self, enc, mask, numeric, words) -> torch.Tensor:
        """Logit that the turn is over, (B,)."""
        if self.inputs == "acoustic":
            keep = torch.zeros_like(numeric)
            keep[:, _PAUSE] = 1
            numeric, words = numeric * keep, torch.zeros_like(words)
        t = self.text(torch.cat([self.words(words).flatten(1), numeric], 1))
        if self.inputs == "text":
            a = torch.zeros(len(t), 2 * t.shape[1], device=t.device)
        else:
            h = self.proj(enc) * mask[..., None]
            h = self.conv(h.transpose(1, 2))  # (B, d, FRAMES / 4)
            m = torch.nn.functional.max_pool1d(mask[:, None], 4, 4)  # which pooled frames hold audio
            mean = (h * m).sum(2) / m.sum(2).clamp(min=1)
            a = torch.cat([mean, h[:, :, -1]], 1)  # the whole 2 s, and its last 80 ms
        return self.head(torch.cat([a, t], 1)).squeeze(1)


class Ensemble(_Scorer):
    """Members of one recipe fitted with different seeds; the answer is their mean logit."""

    def __init__(self, members: list[Arbitrator]):
        super().__init__()
        if not members:
            raise ValueError("an ensemble needs at least one member")
        self.members = nn.ModuleList(members)
        self.meta: dict = {}

    def forward(self, enc, mask, numeric, words) -> torch.Tensor:
        return torch.stack([m(enc, mask, numeric, words) for m in self.members]).mean(0)

    def save(self, path: Path, meta: dict) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        states = [{k: v.half() for k, v in m.state_dict().items()} for m in self.members]  # fp16 is plenty
        torch.save({"config": self.members[0].config, "states": states, "meta": meta}, path)

    @classmethod
    def load(cls, path: Path) -> "Ensemble":
        blob = torch.load(path, map_location="cpu", weights_only=True)
        members = []
        for state in blob["states"]:
            m = Arbitrator(**blob["config"])
            m.load_state_dict({k: v.float() for k, v in state.items()})
            members.append(m)
        model = cls(members)
        model.meta = blob.get("meta", {})
        return model.eval()


@lru_cache(maxsize=None)
def load_arbitrator(model_name: str, inputs: str = "both") -> Ensemble | None:
    """The shipped arbitrator for this recognizer model, or None (no weights for it).

    Read once per process: every StreamingRecognizer shares it (inference only)."""
    path = weights_path(model_name, inputs)
    return Ensemble.load(path) if path.is_file() else None
