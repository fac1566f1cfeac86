"""A lean Llama decoder (SmolLM2 and other Llama-architecture checkpoints), Hugging Face weight names.

Only what scoring and short greedy generation need: grouped-query attention, rotary positions
(rotate-half layout), SwiGLU, RMSNorm, a key/value cache that a batch can share as a prefix.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        var = x.float().pow(2).mean(-1, keepdim=True)
        return (x.float() * torch.rsqrt(var + self.eps)).to(x.dtype) * self.weight


def _rotate(x, cos, sin):
    a, b = x.chunk(2, dim=-1)
    return x * cos + torch.cat((-b, a), dim=-1) * sin


class Attention(nn.Module):
    def __init__(self, cfg: dict):
        super().__init__()
        d, self.h, self.kv = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_key_value_heads"]
        self.hd = d // self.h
        self.q_proj = nn.Linear(d, self.h * self.hd, bias=False)
        self.k_proj = nn.Linear(d, self.kv * self.hd, bias=False)
        self.v_proj = nn.Linear(d, self.kv * self.hd, bias=False)
        self.o_proj = nn.Linear(self.h * self.hd, d, bias=False)

    def forward(self, x, cos, sin, past, mask):
        B, T, _ = x.shape
        q = self.q_proj(x).view(B, T, self.h, self.hd).transpose(1, 2)
        k = self.k_proj(x).view(B, T, self.kv, self.hd).transpose(1, 2)
        v = self.v_proj(x).view(B, T, self.kv, self.hd).transpose(1, 2)
        q, k = _rotate(q, cos, sin), _rotate(k, cos, sin)
        if past is not None:
            pk, pv = past
            k = torch.cat((pk.expand(B, -1, -1, -1), k), dim=2)
            v = torch.cat((pv.expand(B, -1, -1, -1), v), dim=2)
        present = (k, v)
        rep = self.h // self.kv
        ke, ve = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
        y = F.scaled_dot_product_attention(q, ke, ve, attn_mask=mask)
        return self.o_proj(y.transpose(1, 2).reshape(B, T, -1)), present


class MLP(nn.Module):
    def __init__(self, cfg: dict):
        super().__init__()
        d, f = cfg["hidden_size"], cfg["intermediate_size"]
        self.gate_proj = nn.Linear(d, f, bias=False)
        self.up_proj = nn.Linear(d, f, bias=False)
        self.down_proj = nn.Linear(f, d, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Layer(nn.Module):
    def __init__(self, cfg: dict):
        super().__init__()
        self.self_attn = Attention(cfg)
        self.mlp = MLP(cfg)
        self.input_layernorm = RMSNorm(cfg["hidden_size"], cfg["rms_norm_eps"])
        self.post_attention_layernorm = RMSNorm(cfg["hidden_size"], cfg["rms_norm_eps"])

    def forward(self, x, cos, sin, past, mask):
        a, present = self.self_attn(self.input_layernorm(x), cos, sin, past, mask)
        x = x + a
        return x + self.mlp(self.post_attention_layernorm(x)), present


class Body(nn.Module):
    def __init__(self, cfg: dict):
        super().__init__()
        self.embed_tokens = nn.Embedding(cfg["vocab_size"], cfg["hidden_size"])
        self.layers = nn.ModuleList(Layer(cfg) for _ in range(cfg["num_hidden_layers"]))
        self.norm = RMSNorm(cfg["hidden_size"], cfg["rms_norm_eps"])


def rope_inv_freq(cfg: dict) -> torch.Tensor:
    hd = cfg["hidden_size"] // cfg["num_attention_heads"]
    return (1.0 / cfg.get("rope_theta", 10000.0) ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd)).float()


class Llama(nn.Module):
    def __init__(self, cfg: dict):
        super().__init__()
        self.cfg = cfg
        self.model = Body(cfg)
        self.lm_head = nn.Linear(cfg["hidden_size"], cfg["vocab_size"], bias=False)
        if cfg.get("tie_word_embeddings", False):
            self.lm_head.weight = self.model.embed_tokens.weight
        self.register_buffer("inv_freq", rope_inv_freq(cfg), persistent=False)

    def forward(self, ids: torch.Tensor, past: list | None = None):
        """Hidden states for `ids` (B, T) after an optional cached prefix; returns (hidden, cache).

        The cache of a batch-1 prefix is shared by every row. Rows are right-padded, so causal
        masking alone keeps real tokens from seeing the padding.
        """
        B, T = ids.shape
        P = 0 if past is None else past[0][0].shape[2]
        pos = torch.arange(P, P + T, device=ids.device, dtype=torch.float32)
        ang = torch.outer(pos, self.inv_freq)
        ang = torch.cat((ang, ang), dim=-1)
        x = self.model.embed_tokens(ids)
        cos, sin = ang.cos().to(x.dtype), ang.sin().to(x.dtype)
        mask = torch.ones(T, P + T, dtype=torch.bool, device=ids.device).tril(P)
        cache = []
        for i, layer in enumerate(self.model.layers):
            x, present = layer(x, cos, sin, None if past is None else past[i], mask)
            cache.append(present)
        return self.model.norm(x), cache
