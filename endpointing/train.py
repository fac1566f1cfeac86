"""Train the arbitrator: ``speechfront train-endpointer`` (seeded, CPU, minutes).

Examples are the decisions the engine would take. For every pause in a case
the pause tracker (as in the engine) gives the moments the endpointer would be
asked — once the pause starts, at the first-pass candidate, then every 300 ms
(the batcher's deadline) up to the hard limit. At each, the recognizer encodes
the audio so far as the streaming engine does (StreamingRecognizer._encode),
and the transcript features come from the pass before it (the previous
question's, or one 30-330 ms earlier for a pause's first question): live, the
endpointer is asked before the pass's decoder runs. Label: 1 when no speech
follows (the true end), else 0. ``--examples`` keeps the built examples, so
the model can be refitted without the recognizer (``--from-examples``).
"""
from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from asr.frames import Framer
from asr.pause import PauseConfig, PauseTracker
from asr.streaming import StreamingRecognizer, StreamState

from .arbitrator import Arbitrator, Ensemble
from .data import SR, Case
from .features import Features, collate, from_parts, transcript
from .first_pass import EndpointConfig, Endpointer

ASK_EVERY_MS = 300.0  # the batcher's deadline plus a block: how often a pass (and a question) comes
MAX_WINDOW_S = 20.0


@dataclass
class Example:
    case: str
    t: float  # decision time on the case clock
    pause_ms: float
    label: int
    features: Features
    text: str


@dataclass(frozen=True)
class Ask:
    t: float  # when the endpointer is asked (case clock): the pass's encoder reaches here
    pause_ms: float
    onset: float | None  # the pause tracker's speech start
    text_at: float  # where the pass whose transcript it reads ended


def ask_times(case: Case, config: EndpointConfig, rng: np.random.Generator,
              pause: PauseConfig = PauseConfig()) -> list[Ask]:
    """The questions the endpointer would be asked, per the pause tracker."""
    framer, tracker = Framer("x"), PauseTracker(pause)
    out, onset, due = [], None, None
    for f in framer.push(case.audio) + framer.close():
        s = tracker.update(f)
        if s.speech_start is not None and onset is None:
            onset = s.speech_start
        if s.speech or s.speech_end is None:
            due = None
            continue
        if due is None:  # a new pause: once early (a batch may land before the candidate), then on the grid
            due = [float(rng.uniform(30, config.candidate_ms))] + \
                  list(np.arange(config.candidate_ms, config.hard_ms, ASK_EVERY_MS))
            before = f.end - float(rng.uniform(30, ASK_EVERY_MS + 30)) / 1000
        if due and s.pause_ms >= due[0]:
            out.append(Ask(f.end, s.pause_ms, onset, before))
            before = f.end
            due = [d for d in due if d > s.pause_ms]
    return out


def _state(c: Case, t: float) -> StreamState:
    end = int(round(t * SR))
    start = max(0, end - int(MAX_WINDOW_S * SR))
    return StreamState(c.id, None, audio=c.audio[start:end].copy(), window_start=start, received=end, in_speech=True)


def case_examples(c: Case, asks: list[Ask], rec: StreamingRecognizer, batch: int = 8) -> list[Example]:
    """The examples of one case: full passes where a transcript is read, the encoder alone elsewhere."""
    spoken = lambda a: a.onset is not None and a.text_at > a.onset + 0.1  # noqa: E731 (else: no pass yet)
    decoded = sorted({a.text_at for a in asks if spoken(a)})
    encoded = sorted({a.t for a in asks} - set(decoded))
    states = {t: _state(c, t) for t in decoded + encoded}
    for k in range(0, len(decoded), batch):
        rec._pass([states[t] for t in decoded[k:k + batch]])
    for k in range(0, len(encoded), batch):
        rec._encode([states[t] for t in encoded[k:k + batch]])
    out = []
    for a in asks:
        prev = states[a.text_at] if spoken(a) else None
        text = transcript(prev) if prev else ""  # as live: the engine's reader of a stream's text
        f = from_parts(states[a.t].enc, text, prev.signals if prev else None, a.pause_ms, a.t - (a.onset or 0.0))
        out.append(Example(c.id, a.t, a.pause_ms, int(a.t >= c.end), f, text))
    return out


# the questions the shipped weights were trained on: one at a random 30-100 ms of each pause, then
# every ASK_EVERY_MS from 100 ms; they cover the engine's first question at 30 ms (EndpointConfig)
TRAINED_ASKS = EndpointConfig(candidate_ms=100.0)


def examples(cases: list[Case], rec: StreamingRecognizer, config: EndpointConfig = TRAINED_ASKS,
             seed: int = 0, log=sys.stderr) -> list[Example]:
    rng = np.random.default_rng(seed)
    out, t0 = [], time.perf_counter()
    for k, c in enumerate(cases):
        out += case_examples(c, ask_times(c, config, rng), rec)
        if log and k % 25 == 0:
            print(f"  {k + 1}/{len(cases)} cases, {len(out)} decisions, {time.perf_counter() - t0:.0f} s",
                  file=log, flush=True)
    return out


def save_examples(path: Path, data: list[Example]) -> None:
    x = collate([e.features for e in data])
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, enc=x["enc"].half().numpy(), mask=x["mask"].numpy(), numeric=x["numeric"].numpy(),
             words=x["words"].numpy(), case=np.array([e.case for e in data]), t=np.array([e.t for e in data]),
             pause_ms=np.array([e.pause_ms for e in data]), label=np.array([e.label for e in data]),
             text=np.array([e.text for e in data]))


def load_examples(path: Path) -> list[Example]:
    with np.load(path) as npz:  # each key of an npz is read whole on access: read each once
        z = {k: npz[k] for k in npz.files}
    return [Example(str(z["case"][i]), float(z["t"][i]), float(z["pause_ms"][i]), int(z["label"][i]),
                    Features(z["enc"][i], z["mask"][i], z["numeric"][i], z["words"][i]), str(z["text"][i]))
            for i in range(len(z["label"]))]


def fit(train: list[Example], inputs: str = "both", seed: int = 0, epochs: int = 40, d_enc: int = 384,
        members: int = 3) -> Ensemble:
    """An ensemble of ``members`` fits, seeds seed, seed + 1, ..."""
    return Ensemble([fit_one(train, inputs, seed + k, epochs, d_enc) for k in range(members)])


def fit_one(train: list[Example], inputs: str = "both", seed: int = 0, epochs: int = 40, d_enc: int = 384,
            lr: float = 2e-3) -> Arbitrator:
    torch.manual_seed(seed)
    model = Arbitrator(d_enc=d_enc, inputs=inputs)
    x = collate([e.features for e in train])
    y = torch.tensor([e.label for e in train], dtype=torch.float32)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-2)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, lr, total_steps=epochs * ((len(y) + 63) // 64))
    g = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(epochs):
        for idx in torch.randperm(len(y), generator=g).split(64):
            loss = torch.nn.functional.binary_cross_entropy_with_logits(model(**{k: v[idx] for k, v in x.items()}), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    return model.eval()


def evaluate(model: Ensemble, held: list[Example]) -> dict:
    """Accuracy and AUC per decision, and the mid-turn decisions it would accept at 0.5."""
    p = np.array(model.prob([e.features for e in held]))
    y = np.array([e.label for e in held])
    order = np.argsort(-p)
    ranks = np.empty(len(p))
    ranks[order] = np.arange(len(p))
    pos, neg = y == 1, y == 0
    auc = float(np.mean(ranks[pos][:, None] < ranks[neg][None, :])) if pos.any() and neg.any() else float("nan")
    return {"decisions": len(y), "accuracy": round(float(np.mean((p >= 0.5) == y)), 4), "auc": round(auc, 4),
            "false_accepts": int(np.sum((p >= 0.5) & neg)), "mid_turn": int(neg.sum())}


def params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def save_report(path, report: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=1))


def build(args) -> list[Example]:
    """Cases from the training clips (and commands), then their examples."""
    from asr.whisper.load import load_model
    from bench.manifest import load_manifest

    from .data import command_cases, dev_cases, split

    lm = load_model(args.model, "cpu")
    items = [it for it in load_manifest(args.manifest) if split(it.id) == "train"][: args.limit]
    t0 = time.perf_counter()
    # pauses of 0.2-2 s inside the turn; spontaneous clips keep their own hesitations as well
    cases = dev_cases(items, lm, args.seed, (0.2, 2.0), trailing=2.0,
                      n_pauses=lambda rng, it: int(rng.integers(0, 3)))
    if args.commands:
        try:
            cases += command_cases(args.commands, args.seed)
        except ImportError as e:
            print(f"no LTTS voice ({e}); training without synthesized commands", file=sys.stderr)
    print(f"{len(cases)} cases, {sum(len(c.audio) for c in cases) / SR / 60:.1f} min of audio "
          f"({time.perf_counter() - t0:.0f} s)", file=sys.stderr)
    return examples(cases, StreamingRecognizer(lm, endpointer=Endpointer()), seed=args.seed)


def main(args) -> int:
    """Build (or load) the examples, train the arbitrator and its two ablations, save them, report."""
    from .arbitrator import weights_path

    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    if args.from_examples:
        data = load_examples(Path(args.from_examples))
    else:
        data = build(args)
        if args.examples:
            save_examples(Path(args.examples), data)
    ids = list(dict.fromkeys(e.case for e in data))
    rng = np.random.default_rng(args.seed)
    held_cases = {c for c in ids if rng.random() < args.held_out}
    train = [e for e in data if e.case not in held_cases]
    held = [e for e in data if e.case in held_cases]
    d_enc = data[0].features.enc.shape[1]
    report = {"model": args.model, "seed": args.seed, "members": args.members, "cases": len(ids), "decisions": len(data),
              "ends": sum(e.label for e in data), "held_out_cases": len(held_cases),
              "build_seconds": round(time.perf_counter() - t0, 1), "variants": {}}
    for inputs in ("both", "acoustic", "text"):
        t1 = time.perf_counter()
        model = fit(train, inputs, args.seed, args.epochs, d_enc, args.members)
        r = evaluate(model, held) | {"params": params(model), "train_seconds": round(time.perf_counter() - t1, 1)}
        report["variants"][inputs] = r
        print(inputs, json.dumps(r), file=sys.stderr)
        if not args.dry_run:  # the shipped model is fitted on every case once the held-out check is done
            model = fit(data, inputs, args.seed, args.epochs, d_enc, args.members)
            model.save(weights_path(args.model, inputs),
                       {k: report[k] for k in ("model", "seed", "members", "cases", "decisions")})
    save_report(Path(args.report), report)
    print(json.dumps(report, indent=1))
    return 0
