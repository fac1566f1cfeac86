"""Reranking benchmark: 1-best, oracle and reranked WER, and the latency reranking adds.

The N-best lists come from one pass of our recognizer and are cached as JSON (recollected when
the clips, model or beam differ); the LM scores of every hypothesis are computed once per prompt.
Figures are given for the odd-numbered clips and for all clips. With --tune the weights are
chosen on the even-numbered clips only, so the odd-clip figure is then a held-out one.
"""
from __future__ import annotations

import json
import statistics
import time
from dataclasses import replace
from pathlib import Path

import torch

from asr.recognizer import Recognizer, RecognizerConfig, with_options
from asr.rerank import Reranker, RerankConfig
from asr.results import Hypothesis

from .manifest import load_manifest
from .wer import corpus_wer, normalize


def collect_nbest(items, config: RecognizerConfig, progress=None) -> list[dict]:
    rec = Recognizer(config)
    by_path = {str(it.audio): it for it in items}
    out = {}
    for path, t in rec.transcribe_files([str(it.audio) for it in sorted(items, key=lambda it: it.duration)]):
        if isinstance(t, Exception):
            raise t
        it = by_path[path]
        out[it.id] = {"id": it.id, "ref": it.text, "kind": it.kind, "text": t.text,
                      "nbest": [[h.text, h.sum_logprob, len(h.tokens)] for h in t.nbest]}
        if progress:
            progress(it.duration)
    return [out[it.id] for it in items]


def add_lm_scores(records: list[dict], reranker: Reranker, key: str, progress=None) -> None:
    for r in records:
        if key not in r:
            texts = [h[0] for h in r["nbest"][: reranker.config.max_hypotheses]]
            r[key] = reranker.lm_scores(texts)
        if progress:
            progress(1)


def hypotheses(r: dict) -> list[Hypothesis]:
    return [Hypothesis(h[0], (), h[1], h[1] / max(1, h[2]), h[1] / max(1, h[2])) for h in r["nbest"]]


def pick(r: dict, key: str, reranker: Reranker) -> str:
    hyps = hypotheses(r)[: reranker.config.max_hypotheses]
    if len(hyps) < 2:
        return hyps[0].text if hyps else r["text"]
    return reranker.rerank(hyps, lm=r[key])[0].text


def wer_of(records: list[dict], texts: list[str]) -> float:
    return corpus_wer([r["ref"] for r in records], texts)


def oracle(records: list[dict], n: int) -> list[str]:
    import jiwer

    out = []
    for r in records:
        ref = normalize(r["ref"], reference=True)
        hyps = [h[0] for h in r["nbest"][:n]] or [r["text"]]
        if not ref:
            out.append(hyps[0])
            continue
        out.append(min(hyps, key=lambda h: jiwer.process_words(ref, normalize(h) or "<empty>").wer))
    return out


def sweep(records, key, reranker: Reranker, lams, betas):
    best = None
    for lam in lams:
        for beta in betas:
            r = Reranker(reranker.lm, replace(reranker.config, lm_weight=lam, length_weight=beta))
            w = wer_of(records, [pick(x, key, r) for x in records])
            if best is None or w < best[0] - 1e-9:
                best = (w, lam, beta)
    return best


def report(records, key, reranker: Reranker) -> dict:
    asr_only = Reranker(reranker.lm, replace(reranker.config, lm_weight=0.0))

    def part(rs):
        if not rs:
            return None
        one = wer_of(rs, [r["text"] for r in rs])
        rer = wer_of(rs, [pick(r, key, reranker) for r in rs])
        return {"clips": len(rs), "one_best": round(one, 2), "reranked": round(rer, 2),
                "asr_scores_only": round(wer_of(rs, [pick(r, key, asr_only) for r in rs]), 2),
                "oracle": round(wer_of(rs, oracle(rs, reranker.config.max_hypotheses)), 2),
                "relative_change_pct": round(100 * (rer - one) / one, 2) if one else 0.0}

    held = records[1::2]
    return {"held_out": part(held), "all": part(records),
            "spontaneous_held_out": part([r for r in held if r["kind"] == "spontaneous"]),
            "spontaneous_all": part([r for r in records if r["kind"] == "spontaneous"])}


def latency(reranker: Reranker, records: list[dict], n: int = 60) -> dict:
    """Per final: LM time when scoring starts at the endpoint, and what is left when it started early."""
    lists = [hypotheses(r) for r in records if len(r["nbest"]) > 1][:n]
    full, spec = [], []
    for hyps in lists:
        t = time.perf_counter()
        reranker.rerank(hyps)
        full.append(1000 * (time.perf_counter() - t))
        fut = reranker.submit([h.text for h in hyps[: reranker.config.max_hypotheses]])
        lm, _ = fut.result()  # the arbitrator's wait stands here; what remains is the combination
        t = time.perf_counter()
        reranker.rerank(hyps, lm=lm)
        spec.append(1000 * (time.perf_counter() - t))
    q = lambda xs, p: statistics.quantiles(xs, n=100)[p - 1] if len(xs) > 1 else (xs[0] if xs else 0.0)  # noqa: E731
    return {"lists": len(full), "at_endpoint_ms": {"p50": round(q(full, 50), 1), "p90": round(q(full, 90), 1)},
            "speculative_ms": {"p50": round(q(spec, 50), 3), "p90": round(q(spec, 90), 3)}}


def main(args) -> int:
    from tqdm import tqdm

    torch.set_num_threads(args.threads)
    items = load_manifest(args.manifest, args.limit)
    cache = Path(args.nbest_cache) if args.nbest_cache else None
    made_by = {"model": args.model, "beam": args.beam, "ids": [it.id for it in items]}
    stored = json.loads(cache.read_text()) if cache and cache.is_file() else {}
    if stored.get("made_by") == made_by:
        records = stored["records"]
    else:
        config = with_options(RecognizerConfig(model=args.model, device=args.device, threads=args.threads),
                              beam_size=args.beam)
        with tqdm(total=sum(it.duration for it in items), unit="s", desc="N-best", disable=args.quiet) as bar:
            records = collect_nbest(items, config, bar.update)
    t = time.perf_counter()
    reranker = Reranker(config=RerankConfig(prompt=args.prompt, max_hypotheses=args.max_hypotheses), device=args.device)
    load_s = time.perf_counter() - t
    key = f"lm:{args.prompt}:{reranker.lm.name}"
    with tqdm(total=len(records), desc="LM scores", disable=args.quiet) as bar:
        add_lm_scores(records, reranker, key, bar.update)
    if cache:
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps({"made_by": made_by, "records": records}))
    tuned = None
    if args.tune:  # on the even clips; the report's held-out half is the odd ones
        w, lam, beta = sweep(records[0::2], key, reranker, [i / 20 for i in range(0, 11)], [i / 4 for i in range(-2, 5)])
        tuned = {"tune_wer": round(w, 2), "lm_weight": lam, "length_weight": beta}
        reranker.config = replace(reranker.config, lm_weight=lam, length_weight=beta)
    cfg = reranker.config
    result = {"model": args.model, "beam": args.beam, "llm": reranker.lm.name, "prompt": args.prompt,
              "lm_weight": cfg.lm_weight, "length_weight": cfg.length_weight, "tuned": tuned,
              "wer": report(records, key, reranker), "llm_load_s": round(load_s, 2),
              "latency": latency(reranker, records)}
    print(json.dumps(result, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
    return 0
