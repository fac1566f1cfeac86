"""Whisper encoder and decoder in PyTorch, loaded from CTranslate2 weights.

Pre-norm transformer blocks with GELU and scaled dot-product attention. The
encoder takes windows shorter than 30 s (the position table is sliced). The
decoder keeps a self-attention KV cache; cross-attention keys/values are
computed once per encoder output and shared by every hypothesis of that audio:
the hypotheses of one audio are laid out as extra query positions, so beams
never copy the cross-attention cache.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .cpu_weights import faster_step_weights, int8_linear, pack_int8, swap_linears


@dataclass(frozen=True)
class Dims:
    n_mels: int
    n_audio_ctx: int
    n_audio_state: int
    n_audio_head: int
    n_audio_layer: int
    n_vocab: int
    n_text_ctx: int
    n_text_state: int
    n_text_head: int
    n_text_layer: int

    @staticmethod
    def from_weights(w: dict[str, torch.Tensor]) -> "Dims":
        def layers(prefix: str) -> int:
            found = (re.match(rf"{prefix}/layer_(\d+)/", k) for k in w)
            return len({m.group(1) for m in found if m})

        vocab, text_state = w["decoder/embeddings/weight"].shape
        ctx, audio_state = w["encoder/position_encodings/encodings"].shape
        return Dims(
            n_mels=w["encoder/conv1/weight"].shape[1],
            n_audio_ctx=ctx,
            n_audio_state=audio_state,
            n_audio_head=int(w["encoder/num_heads"]) if "encoder/num_heads" in w else audio_state // 64,
            n_audio_layer=layers("encoder"),
            n_vocab=vocab,
            n_text_ctx=w["decoder/position_encodings/encodings"].shape[0],
            n_text_state=text_state,
            n_text_head=int(w["decoder/num_heads"]) if "decoder/num_heads" in w else text_state // 64,
            n_text_layer=layers("decoder"),
        )


def _split_heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    b, t, d = x.shape
    return x.view(b, t, heads, d // heads).transpose(1, 2)


def _merge_heads(x: torch.Tensor) -> torch.Tensor:
    b, h, t, dh = x.shape
    return x.transpose(1, 2).reshape(b, t, h * dh)


class SelfAttention(nn.Module):
    def __init__(self, d: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(d, 3 * d)
        self.out = nn.Linear(d, d)

    def forward(self, x, cache=None, mask=None, causal=False):
        q, k, v = (_split_heads(t, self.heads) for t in self.qkv(x).chunk(3, dim=-1))
        if cache is not None:
            k, v = cache.append(k, v)
        lq, lk = q.shape[2], k.shape[2]
        if causal and lq > 1:
            # bottom-right aligned: query i sees keys up to lk - lq + i
            tri = torch.ones(lq, lk, dtype=torch.bool, device=q.device).tril(lk - lq)
            mask = tri if mask is None else mask & tri
        if mask is not None:
            mask = mask[..., -lq:, :lk]
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.out(_merge_heads(y))


class CrossAttention(nn.Module):
    def __init__(self, d: int, heads: int):
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(d, d)
        self.kv = nn.Linear(d, 2 * d)
        self.out = nn.Linear(d, d)

    def keys_values(self, audio: torch.Tensor):
        k, v = self.kv(audio).chunk(2, dim=-1)
        return _split_heads(k, self.heads), _split_heads(v, self.heads)

    def forward(self, x, kv, group: int, want_weights: bool = False):
        # x: (audios * group, L, d) -> queries (audios, heads, group * L, dh)
        rows, length, d = x.shape
        q = _split_heads(self.q(x).reshape(rows // group, group * length, d), self.heads)
        k, v = kv
        if want_weights:  # return the raw scores: alignment normalises over real frames only
            w = (q @ k.transpose(-1, -2)) * q.shape[-1] ** -0.5
            y = torch.softmax(w, dim=-1) @ v
        else:
            w = None
            y = F.scaled_dot_product_attention(q, k, v)
        return self.out(_merge_heads(y).reshape(rows, length, d)), w


class EncoderBlock(nn.Module):
    def __init__(self, d: int, heads: int):
        super().__init__()
        self.attn_ln, self.attn = nn.LayerNorm(d), SelfAttention(d, heads)
        self.mlp_ln = nn.LayerNorm(d)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))

    def forward(self, x):
        x = x + self.attn(self.attn_ln(x))
        return x + self.mlp(self.mlp_ln(x))


class DecoderBlock(nn.Module):
    def __init__(self, d: int, heads: int):
        super().__init__()
        self.attn_ln, self.attn = nn.LayerNorm(d), SelfAttention(d, heads)
        self.cross_ln, self.cross = nn.LayerNorm(d), CrossAttention(d, heads)
        self.mlp_ln = nn.LayerNorm(d)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))

    def forward(self, x, kv, group, cache, mask, want_weights=False):
        x = x + self.attn(self.attn_ln(x), cache, mask, causal=True)
        y, w = self.cross(self.cross_ln(x), kv, group, want_weights)
        x = x + y
        return x + self.mlp(self.mlp_ln(x)), w


class Preempted(Exception):
    """Raised by the encoder or the decoder when its `stop` callable says newer work is waiting."""


class Encoder(nn.Module):
    def __init__(self, dims: Dims):
        super().__init__()
        d = dims.n_audio_state
        self.conv1 = nn.Conv1d(dims.n_mels, d, 3, padding=1)
        self.conv2 = nn.Conv1d(d, d, 3, stride=2, padding=1)
        self.register_buffer("pos", torch.zeros(dims.n_audio_ctx, d))
        self.blocks = nn.ModuleList(EncoderBlock(d, dims.n_audio_head) for _ in range(dims.n_audio_layer))
        self.ln = nn.LayerNorm(d)
        # CPU: run the matrix products in bf16 (torch.autocast), states back in the input's dtype
        self.cpu_bf16 = False

    def forward(self, mel: torch.Tensor, stop=None) -> torch.Tensor:
        """mel (B, n_mels, 2T) with 2T <= 3000 -> states (B, T, d).

        stop: a callable asked before every block; True gives up (raises Preempted)."""
        if self.cpu_bf16 and mel.device.type == "cpu" and mel.dtype == torch.float32:
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return self._forward(mel, None if stop is None else _without_autocast(stop)).float()
        return self._forward(mel, stop)

    def _forward(self, mel: torch.Tensor, stop) -> torch.Tensor:
        x = F.gelu(self.conv2(F.gelu(self.conv1(mel)))).transpose(1, 2)
        if x.shape[1] > self.pos.shape[0]:
            raise ValueError(f"window of {x.shape[1]} encoder frames exceeds {self.pos.shape[0]}")
        x = x + self.pos[: x.shape[1]]
        for block in self.blocks:
            if stop is not None and stop():
                raise Preempted
            x = block(x)
        return self.ln(x)


def _without_autocast(stop):
    """stop runs the caller's code (the replay and `listen` take in new audio there, through
    Silero VAD): under the encoder's bf16 autocast that VAD read bf16 probabilities and, with
    several streams, crashed on its bf16 recurrent state."""
    def call():
        with torch.autocast("cpu", enabled=False):
            return stop()
    return call


class KVCache:
    """Per-layer self-attention cache, preallocated, reordered for beam search."""

    def __init__(self, layers: int, rows: int, heads: int, length: int, dh: int, like: torch.Tensor):
        shape = (rows, heads, length, dh)
        self.k = [like.new_zeros(shape) for _ in range(layers)]
        self.v = [like.new_zeros(shape) for _ in range(layers)]
        self.pos = 0
        self.layer = 0

    def append(self, k: torch.Tensor, v: torch.Tensor):
        i, n = self.layer, k.shape[2]
        end = self.pos + n
        if end > self.k[i].shape[2]:
            raise ValueError("decoder context is full")
        self.k[i][:, :, self.pos:end] = k
        self.v[i][:, :, self.pos:end] = v
        self.layer += 1
        return self.k[i][:, :, :end], self.v[i][:, :, :end]

    def advance(self, n: int) -> None:
        self.pos += n
        self.layer = 0

    def select(self, rows: torch.Tensor) -> None:
        """Keep only these rows (windows that finished leave the batch)."""
        self.k = [t[rows] for t in self.k]
        self.v = [t[rows] for t in self.v]

    def reorder(self, rows: torch.Tensor) -> None:
        for cache in (self.k, self.v):
            for t in cache:
                t[:, :, : self.pos] = t[rows, :, : self.pos]


EXACT_TOP = 32  # int8 logits: this many best tokens per row are rescored in fp32
# decoder linears that run once per token; cross.kv runs once per pass over the audio and stays fp32
STEP_LINEARS = ("attn.qkv", "attn.out", "cross.q", "cross.out", "mlp.0", "mlp.2")


class Decoder(nn.Module):
    def __init__(self, dims: Dims):
        super().__init__()
        d = dims.n_text_state
        self.dims = dims
        self.embed = nn.Embedding(dims.n_vocab, d)
        self.register_buffer("pos", torch.zeros(dims.n_text_ctx, d))
        self.blocks = nn.ModuleList(DecoderBlock(d, dims.n_text_head) for _ in range(dims.n_text_layer))
        self.ln = nn.LayerNorm(d)
        self.vocab_int8 = None  # packed int8 vocabulary projection (CPU), see quantize

    def quantize(self, blocks: str = "fp32") -> str:
        """int8 weights on the CPU for the logits; ``blocks`` ("fp32", "fp16", "int8", or "auto":
        the faster of fp32 and fp16 on this CPU) for the blocks' per-token linears (see
        cpu_weights.py); fp32 where torch lacks the ops. Returns what the blocks got."""
        self.vocab_int8 = pack_int8(self.embed.weight, None)
        if blocks == "auto":
            blocks = faster_step_weights([b.get_submodule(n) for b in self.blocks for n in STEP_LINEARS])
        for block in self.blocks:
            swap_linears(block, STEP_LINEARS, blocks)
        return blocks

    def cross_kv(self, audio: torch.Tensor):
        return [b.cross.keys_values(audio) for b in self.blocks]

    def new_cache(self, rows: int, length: int | None = None) -> KVCache:
        d, h = self.dims.n_text_state, self.dims.n_text_head
        return KVCache(len(self.blocks), rows, h, length or self.dims.n_text_ctx, d // h, self.pos)

    def forward(self, tokens, positions, kv, group, cache, mask=None, want_weights=False):
        """tokens, positions (R, L) -> hidden (R, L, d); weights per layer if asked."""
        x = self.embed(tokens) + self.pos[positions]
        weights = []
        for block, layer_kv in zip(self.blocks, kv):
            x, w = block(x, layer_kv, group, cache, mask, want_weights)
            weights.append(w)
        cache.advance(tokens.shape[1])
        return self.ln(x), weights

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        if self.vocab_int8 is not None and hidden.device.type == "cpu" and hidden.dtype == torch.float32:
            flat = hidden.reshape(-1, hidden.shape[-1]).contiguous()
            out = int8_linear(flat, self.vocab_int8)
            # the tokens search can pick get exact scores: int8 alone moved WER by ~0.2 points
            top = out.topk(EXACT_TOP, -1).indices
            out.scatter_(-1, top, torch.einsum("nd,nkd->nk", flat, self.embed.weight[top]))
            return out.reshape(*hidden.shape[:-1], -1)
        return (hidden @ self.embed.weight.t()).float()


class Whisper(nn.Module):
    def __init__(self, dims: Dims):
        super().__init__()
        self.dims = dims
        self.encoder = Encoder(dims)
        self.decoder = Decoder(dims)

    @classmethod
    def from_ct2(cls, w: dict[str, torch.Tensor]) -> "Whisper":
        model = cls(Dims.from_weights(w))
        model.load_state_dict(_state_dict(w, model.dims), strict=True)
        return model


def _ln(sd, dst, w, src):
    sd[dst + ".weight"], sd[dst + ".bias"] = w[src + "/gamma"], w[src + "/beta"]


def _lin(sd, dst, w, src):
    sd[dst + ".weight"], sd[dst + ".bias"] = w[src + "/weight"], w[src + "/bias"]


def _block(sd, dst, w, src):
    """Self-attention and feed-forward: the parts encoder and decoder blocks share."""
    _ln(sd, dst + ".attn_ln", w, src + "/self_attention/layer_norm")
    _lin(sd, dst + ".attn.qkv", w, src + "/self_attention/linear_0")
    _lin(sd, dst + ".attn.out", w, src + "/self_attention/linear_1")
    _ln(sd, dst + ".mlp_ln", w, src + "/ffn/layer_norm")
    _lin(sd, dst + ".mlp.0", w, src + "/ffn/linear_0")
    _lin(sd, dst + ".mlp.2", w, src + "/ffn/linear_1")


def _state_dict(w: dict[str, torch.Tensor], dims: Dims) -> dict[str, torch.Tensor]:
    sd: dict[str, torch.Tensor] = {}
    for conv in ("conv1", "conv2"):
        _lin(sd, f"encoder.{conv}", w, f"encoder/{conv}")
    sd["encoder.pos"] = w["encoder/position_encodings/encodings"]
    _ln(sd, "encoder.ln", w, "encoder/layer_norm")
    for i in range(dims.n_audio_layer):
        _block(sd, f"encoder.blocks.{i}", w, f"encoder/layer_{i}")
    sd["decoder.embed.weight"] = w["decoder/embeddings/weight"]
    sd["decoder.pos"] = w["decoder/position_encodings/encodings"]
    _ln(sd, "decoder.ln", w, "decoder/layer_norm")
    for i in range(dims.n_text_layer):
        src, dst = f"decoder/layer_{i}", f"decoder.blocks.{i}"
        _block(sd, dst, w, src)
        _ln(sd, dst + ".cross_ln", w, src + "/attention/layer_norm")
        _lin(sd, dst + ".cross.q", w, src + "/attention/linear_0")
        _lin(sd, dst + ".cross.kv", w, src + "/attention/linear_1")
        _lin(sd, dst + ".cross.out", w, src + "/attention/linear_2")
    return {k: v.float() for k, v in sd.items()}
