"""Convert a llama-architecture GGUF file into a Hugging Face style folder.

The folder (config.json, model.safetensors, tokenizer.json) is what `load_llm` reads, so a
converted GGUF and a downloaded Hugging Face checkpoint take the same path afterwards.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def _unpermute(w: np.ndarray, n_head: int) -> np.ndarray:
    # llama.cpp stores q/k rows with each head's rotary halves interleaved; undo it so the
    # model can use the Hugging Face rotate-half layout
    rows = w.shape[0]
    return w.reshape(n_head, rows // n_head // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


_NAMES = {
    "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj", "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj", "attn_norm": "input_layernorm", "ffn_norm": "post_attention_layernorm",
}


def _field(reader, key, default=None):
    f = reader.fields.get(key)
    return default if f is None else f.contents()


def read_gguf(path: Path) -> tuple[dict, dict[str, np.ndarray], dict]:
    """(config.json dict, fp16 state dict with HF names, tokenizer.json dict)."""
    import gguf
    from gguf import quants

    r = gguf.GGUFReader(str(path))
    arch = _field(r, "general.architecture")
    if arch != "llama":
        raise ValueError(f"{path}: architecture {arch!r} is not supported (only llama)")
    n_head = int(_field(r, "llama.attention.head_count"))
    n_kv = int(_field(r, "llama.attention.head_count_kv", n_head))
    tokens = _field(r, "tokenizer.ggml.tokens")
    config = {
        "model_type": "llama",
        "architectures": ["LlamaForCausalLM"],
        "hidden_size": int(_field(r, "llama.embedding_length")),
        "intermediate_size": int(_field(r, "llama.feed_forward_length")),
        "num_hidden_layers": int(_field(r, "llama.block_count")),
        "num_attention_heads": n_head,
        "num_key_value_heads": n_kv,
        "rms_norm_eps": float(_field(r, "llama.attention.layer_norm_rms_epsilon")),
        "rope_theta": float(_field(r, "llama.rope.freq_base", 10000.0)),
        "max_position_embeddings": int(_field(r, "llama.context_length")),
        "vocab_size": len(tokens),
        "bos_token_id": int(_field(r, "tokenizer.ggml.bos_token_id", 1)),
        "eos_token_id": int(_field(r, "tokenizer.ggml.eos_token_id", 2)),
        "tie_word_embeddings": not any(t.name == "output.weight" for t in r.tensors),
        "torch_dtype": "float16",
        "source": Path(path).name,
    }
    state = {}
    for t in r.tensors:
        w = quants.dequantize(t.data, t.tensor_type).astype(np.float32)
        parts = t.name.split(".")
        if parts[0] == "blk":
            kind = parts[2]
            if kind == "attn_q":
                w = _unpermute(w, n_head)
            elif kind == "attn_k":
                w = _unpermute(w, n_kv)
            name = f"model.layers.{parts[1]}.{_NAMES[kind]}.weight"
        else:
            name = {"token_embd": "model.embed_tokens", "output_norm": "model.norm", "output": "lm_head"}[parts[0]]
            name += ".weight"
        state[name] = w.astype(np.float16)
    return config, state, _tokenizer_json(r, tokens)


def _tokenizer_json(r, tokens: list[str]) -> dict:
    model = _field(r, "tokenizer.ggml.model")
    if model != "gpt2":
        raise ValueError(f"tokenizer model {model!r} is not supported (only byte-level BPE)")
    kinds = _field(r, "tokenizer.ggml.token_type")
    merges = _field(r, "tokenizer.ggml.merges")
    special = [i for i, k in enumerate(kinds) if k == 3]  # 3 = control token
    # smollm/starcoder pre-tokenizer: single digits, then GPT-2 byte-level splitting
    return {
        "version": "1.0",
        "added_tokens": [{"id": i, "content": tokens[i], "single_word": False, "lstrip": False, "rstrip": False,
                          "normalized": False, "special": True} for i in special],
        "normalizer": None,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Digits", "individual_digits": True},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
        ]},
        "post_processor": None,
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False,
                  "vocab": {t: i for i, t in enumerate(tokens)}, "merges": list(merges)},
    }


def convert(path: Path, out: Path) -> None:
    """Write the HF-style folder to `out` (which must not exist yet)."""
    from safetensors.numpy import save_file

    config, state, tok = read_gguf(path)
    out.mkdir(parents=True)
    save_file(state, str(out / "model.safetensors"))
    (out / "config.json").write_text(json.dumps(config, indent=1))
    (out / "tokenizer.json").write_text(json.dumps(tok))
