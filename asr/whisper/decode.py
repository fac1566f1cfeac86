"""Batched Whisper decoding: beam search, sampling fallback, timestamp rules.

Many windows are decoded at once; each window owns ``group`` rows (beams, or
samples at temperature > 0). All rows advance in lockstep, and windows that
are done are dropped from the batch so the rest run on a smaller one.

Follows Whisper's reference decoding: timestamp rules (paired, non-decreasing,
first token a timestamp no later than ``max_initial_timestamp``), blank and
special-token suppression, beam ranking by log-prob / length, and fallback to
higher temperatures when the compression ratio or the average log-prob fails.
Guards for windows shorter than 30 s: a per-window token budget from the audio
duration, no timestamp past the window's audio, and a repetition check that
ends a hypothesis whose tail loops.
"""
from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, field
from functools import lru_cache

import torch

from .load import LoadedModel
from .model import Preempted
from .tokenizer import TIME_PRECISION

NEG_INF = float("-inf")


@dataclass(frozen=True)
class DecodeOptions:
    beam_size: int = 5
    best_of: int = 5
    patience: float = 1.0
    temperatures: tuple[float, ...] = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
    compression_ratio_threshold: float | None = 2.4
    logprob_threshold: float | None = -1.0
    no_speech_threshold: float | None = 0.6  # with a low log-prob: Whisper's rule
    # alone: real dev-set speech peaks at 0.34, hum and noise give 0.90-0.99 (and "you")
    no_speech_strict: float | None = 0.85
    timestamps: bool = True
    max_initial_timestamp: float = 1.0
    suppress_blank: bool = True
    tokens_per_second: float = 8.0  # budget: generous for fast speech
    min_token_budget: int = 16
    repeat_copies: int = 4  # an n-gram this many times in a row ends a hypothesis
    repeat_max_ngram: int = 16
    seed: int = 0


@dataclass
class WindowDecode:
    nbest: list[tuple[list[int], float, list[float]]]  # (tokens, sum_logprob, token logprobs)
    no_speech_prob: float
    temperature: float
    compression_ratio: float
    avg_logprob: float
    tokens: list[int] = field(default_factory=list)  # best hypothesis
    truncated: bool = False  # the best hypothesis ran out of token budget before its end: a loop
    # per token of the best hypothesis: the log-prob of its text up to case (same_text_tokens)
    text_logprobs: list[float] = field(default_factory=list)

    @property
    def is_silence(self) -> bool:
        return not self.tokens


def compression_ratio(text: str) -> float:
    data = text.encode("utf-8")
    return len(data) / len(zlib.compress(data)) if data else 0.0


def _repeat_tail(seq: list[int], copies: int, max_n: int) -> int:
    """Length n of an n-gram repeated ``copies`` times at the end of seq, else 0."""
    for n in range(1, max_n + 1):
        if n * copies > len(seq):
            break
        tail = seq[-n:]
        if all(seq[-(k + 1) * n: len(seq) - k * n] == tail for k in range(1, copies)):
            return n
    return 0


def trim_repeats(seq: list[int], copies: int, max_n: int) -> list[int]:
    """Drop the looped copies at the end of seq, keeping one."""
    n = _repeat_tail(seq, copies, max_n)
    if not n:
        return seq
    while len(seq) >= 2 * n and seq[-2 * n: -n] == seq[-n:]:
        seq = seq[:-n]
    return seq


@lru_cache(maxsize=4)  # a recognizer has two decoders, with the same table
def same_text_tokens(tok, vocab: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """For each token, the tokens with its text up to case (" The", " the", " THE"): a (vocab, K)
    table of ids and a mask of the valid ones. Whisper often splits its belief in a word
    between its cases (" Author" 0.30, " author" 0.21), which says nothing about the word."""
    groups: dict[str, list[int]] = {}
    for i, k in enumerate(same_text_keys(tok)):
        if k is not None:
            groups.setdefault(k, []).append(i)
    width = max(len(g) for g in groups.values())
    members = torch.arange(vocab)[:, None].repeat(1, width)
    ok = torch.zeros(vocab, width, dtype=torch.bool)
    ok[:, 0] = True
    for g in groups.values():
        if len(g) > 1:
            members[g, : len(g)] = torch.tensor(g)
            ok[g, : len(g)] = True
    return members.to(device), ok.to(device)


@lru_cache(maxsize=4)
def same_text_keys(tok) -> tuple[str | None, ...]:
    """Each text token's text in lower case; None for a piece of a UTF-8 sequence, whose text is
    not its own."""
    texts = (tok.decode([i]) for i in range(tok.eot))
    return tuple(None if "\ufffd" in t else t.lower() for t in texts)


class WindowDecoder:
    def __init__(self, lm: LoadedModel, options: DecodeOptions = DecodeOptions()):
        self.lm = lm
        self.opt = options
        tok = lm.tokenizer
        self.tok = tok
        V = lm.model.dims.n_vocab
        self.ts_begin = tok.timestamp_begin
        # suppression as additive biases (0 or -inf): one in-place add per step
        sup = torch.zeros(V)
        ids = [i for i in lm.config.get("suppress_ids", []) if 0 <= i < V]
        sup[ids + [tok.sot, tok.sot_prev, tok.no_speech, tok.transcribe]] = NEG_INF
        if options.timestamps:
            sup[tok.no_timestamps] = NEG_INF
        else:
            sup[self.ts_begin:] = NEG_INF
        self.suppress = sup.to(lm.device)
        begin = torch.zeros(V)
        begin[[i for i in lm.config.get("suppress_ids_begin", [220, tok.eot]) if 0 <= i < V]] = NEG_INF
        self.suppress_begin = begin.to(lm.device)
        self.gen = torch.Generator(device=lm.device).manual_seed(options.seed)
        self.same_text = same_text_tokens(tok, V, lm.device)

    # -- public -----------------------------------------------------------------

    @torch.inference_mode()
    def decode(self, enc: torch.Tensor, durations: list[float], prompts: list[list[int]] | None = None,
               forced: list[list[int]] | None = None, stop=None, kv=None) -> list[WindowDecode]:
        """enc (A, T, d) encoder states; durations: seconds of real audio per window.

        prompts: earlier text, given as context (<|startofprev|>). forced: tokens the
        transcript of each window must start with (streaming's committed words; an
        empty list is allowed); they are not part of the returned tokens. With
        timestamps on, a forced prefix opens with <|0.00|>, and the timestamp rules
        carry on from it: the model can still close the segment where speech ends.
        stop: a callable asked before every decoding step; when it returns True the
        decode gives up and raises Preempted. kv: the decoder's cross-attention keys and
        values of enc (Decoder.cross_kv), when the caller needs them too.
        """
        A = enc.shape[0]
        kv = kv or self.lm.model.decoder.cross_kv(enc)
        prompts = prompts or [[] for _ in range(A)]
        if forced is not None and self.opt.timestamps:
            forced = [[self.ts_begin] + list(f) for f in forced]
        forced = forced or [[] for _ in range(A)]
        results: list[WindowDecode | None] = [None] * A
        todo = list(range(A))
        for temperature in self.opt.temperatures:
            if not todo:
                break
            rows = torch.tensor(todo, device=enc.device) if len(todo) < A else None  # a retry: its windows' rows
            decoded = self._generate(kv if rows is None else [(k[rows], v[rows]) for k, v in kv],
                                     [durations[i] for i in todo], [prompts[i] for i in todo],
                                     temperature, [forced[i] for i in todo], stop)
            still = []
            for i, r in zip(todo, decoded):
                results[i] = r
                if self._needs_fallback(r) and temperature != self.opt.temperatures[-1]:
                    still.append(i)
            todo = still
        return results  # type: ignore[return-value]

    def _needs_fallback(self, r: WindowDecode) -> bool:
        o = self.opt
        if o.no_speech_threshold is not None and r.no_speech_prob > o.no_speech_threshold:
            return False  # silence: a retry would only invent words
        if r.truncated or (o.compression_ratio_threshold is not None
                           and r.compression_ratio > o.compression_ratio_threshold):
            return True  # a short loop (one sentence twice and a half) compresses too little to show
        return o.logprob_threshold is not None and r.avg_logprob < o.logprob_threshold

    # -- generation ---------------------------------------------------------------

    def _prefix(self, prompt: list[int]) -> list[int]:
        head = []
        if prompt:
            head = [self.tok.sot_prev] + prompt[-(self.lm.model.dims.n_text_ctx // 2 - 1):]
        tail = list(self.tok.sot_sequence)
        if not self.opt.timestamps:
            tail.append(self.tok.no_timestamps)
        return head + tail

    def _generate(self, kv, durations, prompts, temperature, forced, stop=None) -> list[WindowDecode]:
        dec = self.lm.model.decoder
        dev = kv[0][0].device
        A = kv[0][0].shape[0]
        beam = temperature == 0.0
        G = self.opt.beam_size if beam else self.opt.best_of
        R = A * G
        prefixes = [self._prefix(p) + list(f) for p, f in zip(prompts, forced)]
        P = max(len(p) for p in prefixes)
        sot_at = [P - len(p) + p.index(self.tok.sot) for p in prefixes]
        budgets = [
            min(dec.dims.n_text_ctx - P,
                max(self.opt.min_token_budget, math.ceil(d * self.opt.tokens_per_second) - len(f)))
            for d, f in zip(durations, forced)
        ]
        max_new = max(budgets)
        max_ts = [min(int(round(d / TIME_PRECISION)), 1500) for d in durations]

        tokens0 = torch.full((A, P), self.tok.eot, dtype=torch.long)
        valid = torch.zeros((A, P + max_new), dtype=torch.bool)
        valid[:, P:] = True
        for a, p in enumerate(prefixes):
            tokens0[a, P - len(p):] = torch.tensor(p)
            valid[a, P - len(p): P] = True
        pad = (~valid[:, :P]).sum(1)
        positions0 = (torch.arange(P)[None] - pad[:, None]).clamp_min(0)
        tokens0, positions0, valid, pad = tokens0.to(dev), positions0.to(dev), valid.to(dev), pad.to(dev)
        padded = bool((pad > 0).any())

        # the prefix is the same for a window's G rows: run it once per window, then copy its cache
        cache = dec.new_cache(A, P + max_new)
        mask = self._mask(valid, 0, P) if padded else None
        hidden, _ = dec(tokens0, positions0, kv, 1, cache, mask)
        sot_logits = dec.logits(hidden[torch.arange(A, device=dev), torch.tensor(sot_at, device=dev)])
        no_speech = torch.softmax(sot_logits, -1)[:, self.tok.no_speech].tolist()
        rep = lambda t: t.repeat_interleave(G, 0)  # noqa: E731
        logits = rep(dec.logits(hidden[:, -1]))
        # per-row state; `alive` maps current rows' audio index back to the window
        audio_of_row = rep(torch.arange(A, device=dev))
        cache.select(audio_of_row)
        valid, pad = rep(valid), rep(pad)
        seq = torch.full((R, max_new), self.tok.eot, dtype=torch.long, device=dev)
        tok_lp = torch.zeros((R, max_new), device=dev)
        text_lp = torch.zeros((R, max_new), device=dev)
        sum_lp = torch.zeros(R, device=dev)
        if beam:
            sum_lp.view(A, G)[:, 1:] = NEG_INF  # all beams start equal: expand only the first
        # the last two tokens before the first generated one, and the last timestamp, for the rules
        seed = torch.tensor([([self.ts_begin, self.ts_begin] + list(f))[-2:] for f in forced], device=dev)
        seed = seed.repeat_interleave(G, 0)
        seeded = any(forced)
        last_ts = torch.tensor([max([t - self.ts_begin for t in f if t >= self.ts_begin], default=-1) for f in forced],
                               device=dev).repeat_interleave(G, 0)
        done_row = torch.zeros(R, dtype=torch.bool, device=dev)
        # (tokens, score, token log-probs, text log-probs) per window
        finished: list[list[tuple[list[int], float, list[float], list[float]]]] = [[] for _ in range(A)]
        active = list(range(A))  # window index of each audio slot still in the batch
        max_candidates = max(1, round(G * self.opt.patience))

        for step in range(max_new):
            if stop is not None and stop():
                raise Preempted
            logits = self._filter(logits, seq, step, last_ts, audio_of_row, max_ts, active,
                                  seed if seeded else None)
            logp = torch.log_softmax(logits.float(), dim=-1)
            if beam:
                src, nxt, new_lp = self._beam_step(logp, sum_lp, seq, (tok_lp, text_lp), step, active, finished, G,
                                                   max_candidates)
            else:
                src, nxt, new_lp = self._sample_step(logits, logp, temperature, done_row)
            new_text_lp = self._text_lp(logp, src, nxt)
            seq, tok_lp, text_lp, sum_lp = seq[src], tok_lp[src], text_lp[src], sum_lp[src]
            last_ts, done_row = last_ts[src], done_row[src]
            if step:
                cache.reorder(src)
            seq[:, step] = nxt
            tok_lp[:, step] = torch.where(done_row, 0.0, new_lp)
            text_lp[:, step] = torch.where(done_row, 0.0, new_text_lp)
            sum_lp = self._beam_scores if beam else torch.where(done_row, sum_lp, sum_lp + new_lp)
            is_ts = nxt >= self.ts_begin
            last_ts = torch.where(is_ts, torch.maximum(last_ts, nxt - self.ts_begin), last_ts)
            done_row = done_row | (nxt == self.tok.eot)

            # which windows are complete now
            keep_audio = []
            for slot, a in enumerate(active):
                rows = slice(slot * G, (slot + 1) * G)
                if beam:
                    complete = len(finished[a]) >= max_candidates
                else:
                    complete = bool(done_row[rows].all())
                if not complete and step + 1 >= budgets[a]:
                    if not (beam and finished[a]):  # keep truncated rows only when nothing ended properly
                        self._flush(a, seq[rows], (tok_lp[rows], text_lp[rows]), sum_lp[rows], step + 1, finished, G, beam)
                    complete = True
                if complete and not beam and not finished[a]:
                    self._flush(a, seq[rows], (tok_lp[rows], text_lp[rows]), sum_lp[rows], step + 1, finished, G, beam)
                if not complete:
                    keep_audio.append(slot)
            if len(keep_audio) < len(active):
                if not keep_audio:
                    break
                rows_keep = torch.cat([torch.arange(s * G, (s + 1) * G) for s in keep_audio]).to(dev)
                audio_keep = torch.tensor(keep_audio, device=dev)
                seq, tok_lp, text_lp, sum_lp = seq[rows_keep], tok_lp[rows_keep], text_lp[rows_keep], sum_lp[rows_keep]
                last_ts, done_row, seed = last_ts[rows_keep], done_row[rows_keep], seed[rows_keep]
                cache.select(rows_keep)
                kv = [(k[audio_keep], v[audio_keep]) for k, v in kv]
                active = [active[s] for s in keep_audio]
                audio_of_row = torch.arange(len(active), device=dev).repeat_interleave(G)
                pad = pad[rows_keep]
                valid = valid[rows_keep]
            if step + 1 >= max_new:
                break
            pos = (P + step - pad)[:, None]
            mask = self._mask(valid, P + step, P + step + 1) if padded else None
            hidden, _ = dec(seq[:, step: step + 1], pos, kv, G, cache, mask)
            logits = dec.logits(hidden[:, -1])

        return [self._result(finished[a], no_speech[a], temperature) for a in range(A)]

    def _mask(self, valid: torch.Tensor, start: int, end: int) -> torch.Tensor:
        """(R, 1, Lq, Lk) keys valid and causal; each position always sees itself."""
        lq = end - start
        k = valid[:, :end]
        causal = torch.ones(lq, end, dtype=torch.bool, device=valid.device).tril(start)
        eye = torch.zeros(lq, end, dtype=torch.bool, device=valid.device)
        eye[torch.arange(lq), torch.arange(start, end)] = True
        return ((k[:, None, :] & causal) | eye)[:, None]

    def _filter(self, logits, seq, step, last_ts, audio_of_row, max_ts, active, seed=None):
        """Apply suppression, timestamp rules and loop guards to logits, in place."""
        logits = logits.float()
        logits.add_(self.suppress)
        if step == 0 and self.opt.suppress_blank:
            logits.add_(self.suppress_begin)
        tb, eot = self.ts_begin, self.tok.eot
        if self.opt.timestamps:
            ts = logits[:, tb:]
            idx = torch.arange(ts.shape[1], device=logits.device)[None]
            limit = torch.tensor([max_ts[a] for a in active], device=logits.device)[audio_of_row][:, None]
            if step == 0 and seed is None:  # the first token is a timestamp, no later than max_initial_timestamp
                logits[:, :tb] = NEG_INF
                first = min(int(round(self.opt.max_initial_timestamp / TIME_PRECISION)), ts.shape[1] - 1)
                limit = limit.clamp_max(first)
            else:
                hist = seq[:, :step] if seed is None else torch.cat([seed, seq[:, :step]], 1)
                last_was = hist[:, -1] >= tb
                penult_was = hist[:, -2] >= tb if hist.shape[1] >= 2 else torch.ones_like(last_was)
                text_off = last_was & ~penult_was  # an open pair must close (or the text end)
                if text_off.any():
                    logits[text_off.nonzero().flatten(), :eot] = NEG_INF
                # timestamps never decrease, and a segment has a non-zero length
                lowest = torch.where(text_off, last_ts, last_ts + 1)
                ts.masked_fill_((last_was & penult_was)[:, None] | (idx < lowest[:, None]), NEG_INF)
            ts.masked_fill_(idx > limit, NEG_INF)
            # when the timestamps together outweigh every text token, emit a timestamp
            force = torch.logsumexp(ts, -1) > logits[:, :tb].max(-1).values
            if force.any():
                logits[force.nonzero().flatten(), :tb] = NEG_INF
        # loop guard: a row whose text tail repeats may only end
        rows = seq[:, :step].tolist() if step else []
        looped = [r for r, s in enumerate(rows)
                  if _repeat_tail([t for t in s if t < tb], self.opt.repeat_copies, self.opt.repeat_max_ngram)]
        if looped:
            keep = logits[looped, eot].clone()
            logits[looped] = NEG_INF
            logits[looped, eot] = torch.where(torch.isinf(keep), 0.0, keep)
        return logits

    def _text_lp(self, logp: torch.Tensor, src: torch.Tensor, nxt: torch.Tensor) -> torch.Tensor:
        """Log-prob, in row src's distribution, of all the tokens with the text of nxt up to case."""
        members, ok = self.same_text
        lp = logp[src[:, None], members[nxt]]
        return torch.logsumexp(lp.masked_fill(~ok[nxt], NEG_INF), dim=-1)

    def _beam_step(self, logp, sum_lp, seq, lps, step, active, finished, G, max_candidates):
        """lps: the rows' token and text log-probs so far."""
        tok_lp, text_lp = lps
        R, V = logp.shape
        n = len(active)
        scores = (sum_lp[:, None] + logp).view(n, G * V)
        top, idx = scores.topk(2 * G, dim=-1)
        top, idx = top.tolist(), idx.tolist()
        src, nxt, new_sum, new_lp = [], [], [], []
        eot = self.tok.eot
        prev = seq[:, :step].tolist()
        prev_lp = tok_lp[:, :step].tolist()
        prev_text = text_lp[:, :step].tolist()
        prev_sum = sum_lp.tolist()  # a token's log-prob is its score minus its row's: no per-item sync
        for slot, a in enumerate(active):
            chosen = 0
            for score, flat in zip(top[slot], idx[slot]):
                if score == NEG_INF:
                    break
                row, token = slot * G + flat // V, flat % V
                lp = score - prev_sum[row]
                if token == eot:
                    if len(finished[a]) < max_candidates:
                        finished[a].append((prev[row], score, prev_lp[row] + [lp], prev_text[row]))
                    continue
                src.append(row)
                nxt.append(token)
                new_sum.append(score)
                new_lp.append(lp)
                chosen += 1
                if chosen == G:
                    break
            while chosen < G:  # only when every candidate was -inf: keep a dead row
                src.append(slot * G)
                nxt.append(eot)
                new_sum.append(NEG_INF)
                new_lp.append(0.0)
                chosen += 1
        dev = logp.device
        self._beam_scores = torch.tensor(new_sum, device=dev)
        return torch.tensor(src, device=dev), torch.tensor(nxt, device=dev), torch.tensor(new_lp, device=dev)

    def _sample_step(self, logits, logp, temperature, done_row):
        probs = torch.softmax(logits.float() / temperature, dim=-1)
        nxt = torch.multinomial(probs, 1, generator=self.gen).squeeze(1)
        nxt = torch.where(done_row, torch.full_like(nxt, self.tok.eot), nxt)
        lp = logp.gather(1, nxt[:, None]).squeeze(1)
        src = torch.arange(logits.shape[0], device=logits.device)
        return src, nxt, lp

    def _flush(self, a, seq, lps, sum_lp, length, finished, G, beam):
        """Out of budget (or sampling done): keep the rows as they stand."""
        tok_lp, text_lp = lps
        rows = range(seq.shape[0])
        for r in rows:
            s = float(sum_lp[r])
            if s == NEG_INF:
                continue
            toks = seq[r, :length].tolist()
            lps, texts = tok_lp[r, :length].tolist(), text_lp[r, :length].tolist()
            if self.tok.eot in toks:
                cut = toks.index(self.tok.eot)
                toks, lps, texts = toks[:cut], lps[: cut + 1], texts[:cut]
            finished[a].append((toks, s, lps, texts))
            if beam and len(finished[a]) >= G:
                break

    def _result(self, cands, no_speech, temperature) -> WindowDecode:
        o = self.opt
        cleaned, cut, texts = [], [], []
        for toks, s, lps, text_lps in cands:
            cut.append(len(lps) == len(toks))  # no log-prob for an end-of-text: stopped by the budget
            toks = trim_repeats(list(toks), o.repeat_copies, o.repeat_max_ngram)
            cleaned.append((toks, s, lps[: len(toks) + 1]))
            texts.append(text_lps[: len(toks)])
        # rank by log-prob / length, as Whisper does with no length penalty
        order = sorted(range(len(cleaned)), key=lambda i: cleaned[i][1] / max(1, len(cleaned[i][0])), reverse=True)
        cleaned = [cleaned[i] for i in order]
        if not cleaned:
            return WindowDecode([], no_speech, temperature, 0.0, NEG_INF, [])
        best, s, _ = cleaned[0]
        text = self.tok.decode(best)
        avg = s / (len(best) + 1)
        return WindowDecode(cleaned, no_speech, temperature, compression_ratio(text), avg, best, cut[order[0]],
                            texts[order[0]])
