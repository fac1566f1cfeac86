"""Word times from cross-attention: the model's alignment heads + DTW.

The decoder is run once more over the chosen tokens; the attention of the
alignment heads over the window's real audio frames is normalised, median
filtered and averaged, and dynamic time warping finds the monotonic path from
tokens to encoder frames (20 ms each). Word starts and ends are where that path
enters each word's first and leaves its last token.
"""
from __future__ import annotations

import string

import numpy as np
import torch
import torch.nn.functional as F

from .load import LoadedModel
from .tokenizer import TIME_PRECISION

_PREPEND = "\"'“¿([{-"
_APPEND = "\"'.。,，!！?？:：”)]}、"
_TYPICAL_WORD = 0.3  # seconds: read speech runs near three words a second


def dtw(cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Monotonic minimum-cost path through cost (N, M), by anti-diagonals."""
    n, m = cost.shape
    acc = np.full((n + 1, m + 1), np.inf)
    acc[0, 0] = 0.0
    move = np.zeros((n + 1, m + 1), dtype=np.int8)  # 0 diagonal, 1 from above, 2 from left
    for d in range(2, n + m + 1):
        i = np.arange(max(1, d - m), min(n, d - 1) + 1)
        j = d - i
        opts = np.stack([acc[i - 1, j - 1], acc[i - 1, j], acc[i, j - 1]])
        best = opts.argmin(0)
        acc[i, j] = cost[i - 1, j - 1] + opts[best, np.arange(len(i))]
        move[i, j] = best
    i, j = n, m
    path = []
    while i > 0 and j > 0:
        path.append((i - 1, j - 1))
        step = move[i, j]
        if step == 0:
            i, j = i - 1, j - 1
        elif step == 1:
            i -= 1
        else:
            j -= 1
    path.reverse()
    p = np.array(path)
    return p[:, 0], p[:, 1]


def _median_filter(x: torch.Tensor, width: int) -> torch.Tensor:
    pad = width // 2
    if x.shape[-1] <= pad:
        return x
    shape = x.shape
    y = F.pad(x.reshape(-1, 1, shape[-1]), (pad, pad), mode="reflect").reshape(*shape[:-1], -1)
    return y.unfold(-1, width, 1).median(-1).values


def split_words(tokenizer, tokens: list[int]) -> list[tuple[str, list[int]]]:
    """Group text tokens into words: a new word starts at a space or punctuation."""
    words: list[tuple[str, list[int]]] = []
    pending: list[int] = []
    for t in tokens:
        pending.append(t)
        piece = tokenizer.decode(pending)
        if "\ufffd" in piece:  # an incomplete UTF-8 sequence: wait for more tokens
            continue
        starts = piece.startswith(" ") or piece.strip() in string.punctuation or not words
        if starts:
            words.append((piece, pending))
        else:
            words[-1] = (words[-1][0] + piece, words[-1][1] + pending)
        pending = []
    if pending:
        words.append((tokenizer.decode(pending), pending))
    return _merge_punctuation(words)


def _merge_punctuation(words):
    out: list[list] = [[w, list(t)] for w, t in words]
    i = len(out) - 2
    while i >= 0:  # opening marks join the next word
        if out[i][0].startswith(" ") and out[i][0].strip() in _PREPEND and out[i + 1][0]:
            out[i + 1] = [out[i][0] + out[i + 1][0], out[i][1] + out[i + 1][1]]
            out[i] = ["", []]
        i -= 1
    i = 1
    while i < len(out):  # closing marks join the previous word
        if not out[i][0].startswith(" ") and out[i][0] in _APPEND and out[i - 1][0]:
            out[i - 1] = [out[i - 1][0] + out[i][0], out[i - 1][1] + out[i][1]]
            out[i] = ["", []]
        i += 1
    return [(w, t) for w, t in out if w]


@torch.inference_mode()
def align(lm: LoadedModel, enc: torch.Tensor, texts: list[list[int]], frames: list[int], medfilt: int = 7,
          kv=None):
    """Per window: list of (word, start, end, token indices) in window seconds.

    enc (A, T, d); texts: text tokens per window (no timestamps); frames: encoder
    frames of real audio per window; kv: Decoder.cross_kv(enc), if the caller has it.
    """
    tok = lm.tokenizer
    dec = lm.model.decoder
    heads = lm.config.get("alignment_heads") or [
        [layer, h] for layer in range(dec.dims.n_text_layer // 2, dec.dims.n_text_layer) for h in range(dec.dims.n_text_head)
    ]
    prefix = list(tok.sot_sequence) + [tok.no_timestamps]
    seqs = [prefix + t + [tok.eot] for t in texts]
    L = max(len(s) for s in seqs)
    A = len(seqs)
    tokens = torch.full((A, L), tok.eot, dtype=torch.long)
    for a, s in enumerate(seqs):
        tokens[a, : len(s)] = torch.tensor(s)
    tokens = tokens.to(enc.device)
    positions = torch.arange(L, device=enc.device)[None].expand(A, L)
    cache = dec.new_cache(A, L)
    _, weights = dec(tokens, positions, kv or dec.cross_kv(enc), 1, cache, want_weights=True)
    stacked = torch.stack([weights[layer][:, h] for layer, h in heads], dim=1).float()  # (A, heads, L, T)
    out = []
    for a in range(A):
        n_text = len(texts[a])
        if n_text == 0:
            out.append([])
            continue
        w = stacked[a, :, : len(seqs[a]), : max(1, frames[a])].softmax(-1)
        std, mean = torch.std_mean(w, dim=-2, keepdim=True, unbiased=False)
        w = _median_filter((w - mean) / (std + 1e-8), medfilt).mean(0)
        # a token's time is read from the row that predicts it: no-timestamps through the last text token
        matrix = w[len(prefix) - 1: len(prefix) + n_text].cpu().numpy()
        ti, fi = dtw(-matrix.astype(np.float64))
        jumps = np.pad(np.diff(ti), (1, 0), constant_values=1).astype(bool)
        times = fi[jumps] * TIME_PRECISION  # frame at which each token (and the end) starts
        words = split_words(tok, texts[a])
        result, k = [], 0
        for word, wt in words:
            start, end = float(times[k]), float(times[min(k + len(wt), len(times) - 1)])
            result.append((word, start, max(end, start), list(range(k, k + len(wt)))))
            k += len(wt)
        out.append(clamp_long_words(result))
    return out


def clamp_long_words(words: list[tuple]) -> list[tuple]:
    """DTW hands a pause to the word beside it: cap words at the window's edges,
    after a pause or before one (sentence ends, commas), to twice the median word length."""
    if not words:
        return words
    # only words inside a phrase set the cap: the others may hold a pause
    inner = sorted(e - s for i, (w, s, e, _) in enumerate(words)
                   if 0 < i < len(words) - 1 and w.strip()[-1:] not in ".?!,")
    median = inner[(len(inner) - 1) // 2] if inner else _TYPICAL_WORD
    longest = 2 * min(0.7, max(median, 0.2))
    out = [list(w) for w in words]
    for i, w in enumerate(out):
        if w[2] - w[1] <= longest:
            continue
        text = w[0].strip()
        if i == 0 or out[i - 1][0].strip()[-1:] in ".?!":
            w[1] = w[2] - longest  # the pause was before it
        if i == len(out) - 1 or text[-1:] in ".?!,":
            w[2] = w[1] + longest  # the pause comes after it
    return [tuple(w) for w in out]
