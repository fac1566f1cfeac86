"""A causal LM behind two calls: score texts in one padded batch, and short greedy generation."""
from __future__ import annotations

import json
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import torch
from tokenizers import Tokenizer

from .llama import Llama, rope_inv_freq


@dataclass(frozen=True)
class TextScore:
    logprob: float  # sum of the text's token log-probs (end marker included)
    tokens: int


class CausalLM:
    def __init__(self, name: str, tokenizer: Tokenizer, config: dict, device: torch.device, model=None, hf=None):
        self.name, self.tokenizer, self.config, self.device = name, tokenizer, config, device
        self.model, self.hf = model, hf  # our Llama, or a transformers model as the fallback
        self._prefixes: OrderedDict[tuple, list] = OrderedDict()
        self.start_id = config.get("bos_token_id") or 0

    @classmethod
    def from_folder(cls, folder: Path, cfg: dict, device, dtype, name: str) -> CausalLM:
        from safetensors.torch import load_file

        with torch.device("meta"):
            model = Llama(cfg)
        state = load_file(str(folder / "model.safetensors"))
        if cfg.get("tie_word_embeddings", False):
            state.pop("lm_head.weight", None)
        model.load_state_dict(state, strict=False, assign=True)
        if cfg.get("tie_word_embeddings", False):
            model.lm_head.weight = model.model.embed_tokens.weight
        missing = [k for k, p in model.state_dict().items() if p.is_meta]
        if missing:
            raise ValueError(f"{folder}: weights missing from model.safetensors: {missing[:3]}")
        model.inv_freq = rope_inv_freq(cfg)  # a buffer, not in the checkpoint
        model = model.to(device, dtype).eval()
        return cls(name, Tokenizer.from_file(str(folder / "tokenizer.json")), cfg, device, model=model)

    @classmethod
    def from_transformers(cls, folder: Path, device, dtype, name: str) -> CausalLM:
        try:
            from transformers import AutoModelForCausalLM
        except ImportError:
            raise RuntimeError(f"{folder}: not a Llama checkpoint; other architectures need "
                               "`pip install transformers`") from None
        hf = AutoModelForCausalLM.from_pretrained(str(folder), torch_dtype=dtype).to(device).eval()
        cfg = json.loads((Path(folder) / "config.json").read_text())
        return cls(name, Tokenizer.from_file(str(Path(folder) / "tokenizer.json")), cfg, device, hf=hf)

    def encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text, add_special_tokens=False).ids

    def decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True)

    @torch.inference_mode()
    def score(self, texts: list[str], prefix: str = "", end: str = "", batch: int = 16) -> list[TextScore]:
        """Log P(text + end | prefix) for each text, the texts scored together in padded batches."""
        pre = self.encode(prefix) if prefix else [self.start_id]
        end_ids = self.encode(end) if end else []
        rows = [self.encode(t) + end_ids for t in texts]
        out: list[TextScore] = []
        for i in range(0, len(rows), batch):
            out += self._score_rows(pre, rows[i : i + batch])
        return out

    def _score_rows(self, pre: list[int], rows: list[list[int]]) -> list[TextScore]:
        L = max(1, max(len(r) for r in rows))
        # input: the prefix's last token, then each row; position j predicts row[j]
        ids = torch.full((len(rows), L + 1), pre[-1], dtype=torch.long)
        for b, r in enumerate(rows):
            ids[b, 1 : 1 + len(r)] = torch.tensor(r, dtype=torch.long)
        ids = ids.to(self.device)
        if self.model is not None:
            hidden, _ = self.model(ids[:, :-1], self._prefix_cache(pre[:-1]))
            head = self.model.lm_head
        else:
            full = torch.cat((torch.tensor([pre[:-1]] * len(rows), dtype=torch.long, device=self.device), ids), 1)
            out = self.hf(input_ids=full[:, :-1], output_hidden_states=True)
            hidden, head = out.hidden_states[-1][:, len(pre) - 1 :], self.hf.get_output_embeddings()
        lengths = torch.tensor([len(r) for r in rows], device=self.device)
        valid = torch.arange(L, device=self.device)[None, :] < lengths[:, None]
        logp = torch.log_softmax(head(hidden[valid]).float(), dim=-1)
        tok = logp.gather(1, ids[:, 1:][valid][:, None])[:, 0]
        sums = torch.zeros(len(rows), device=self.device).index_add_(0, valid.nonzero()[:, 0], tok)
        return [TextScore(float(s), len(r)) for s, r in zip(sums.tolist(), rows)]

    def _prefix_cache(self, ids: list[int]):
        if not ids:
            return None
        key = tuple(ids)
        if key not in self._prefixes:
            _, cache = self.model(torch.tensor([ids], device=self.device))
            self._prefixes[key] = cache
            while len(self._prefixes) > 8:  # prompts repeat: the instruction, recent contexts
                self._prefixes.popitem(last=False)
        self._prefixes.move_to_end(key)
        return self._prefixes[key]

    @torch.inference_mode()
    def generate(self, prompt: str, max_tokens: int = 64, stop: tuple[str, ...] = ("<|im_end|>",)) -> str:
        """Greedy continuation of `prompt`, up to a stop token or `max_tokens`."""
        ids = self.encode(prompt)
        stop_ids = {i for s in stop for i in [self.tokenizer.token_to_id(s)] if i is not None}
        stop_ids.add(self.config.get("eos_token_id", -1))
        new: list[int] = []
        if self.model is None:
            x = torch.tensor([ids], device=self.device)
            for _ in range(max_tokens):
                nxt = int(self.hf(input_ids=x).logits[0, -1].argmax())
                if nxt in stop_ids:
                    break
                new.append(nxt)
                x = torch.cat((x, torch.tensor([[nxt]], device=self.device)), 1)
            return self.decode(new)
        hidden, cache = self.model(torch.tensor([ids], device=self.device))
        for _ in range(max_tokens):
            nxt = int(self.model.lm_head(hidden[0, -1]).argmax())
            if nxt in stop_ids:
                break
            new.append(nxt)
            hidden, cache = self.model(torch.tensor([[nxt]], device=self.device), cache)
        return self.decode(new)

    def chat(self, system: str, user: str) -> str:
        """A ChatML prompt (SmolLM2's template) ready for the assistant's turn."""
        return f"<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n"
