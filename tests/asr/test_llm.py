"""The GGUF reader and the lean Llama: conversion, cache, tokenizer, batched scoring, generation."""
from __future__ import annotations

import pytest
import torch

from asr.llm import load_llm
from asr.llm.load import bundled_gguf, converted


@pytest.fixture(scope="session")
def llm_cache(tmp_path_factory):
    # a fresh cache: the first load converts the GGUF, as on a user's first run
    mp = pytest.MonkeyPatch()
    d = tmp_path_factory.mktemp("cache")
    mp.setenv("SPEECHFRONT_CACHE", str(d))
    yield d
    mp.undo()


@pytest.fixture(scope="session")
def llm(llm_cache):
    torch.set_num_threads(2)
    return load_llm(device="cpu")


def test_conversion_is_cached_and_reused(llm, llm_cache):
    folder = converted(bundled_gguf())
    assert folder.parent.parent == llm_cache
    weights = folder / "model.safetensors"
    before = weights.stat().st_mtime_ns
    again = load_llm(device="cpu")
    assert weights.stat().st_mtime_ns == before  # read, not converted again
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".converting")]
    ids = torch.tensor([llm.encode("A test of the cache.")])
    with torch.inference_mode():
        assert torch.equal(llm.model(ids)[0], again.model(ids)[0])


def test_matches_transformers_llama(llm):
    transformers = pytest.importorskip("transformers")
    folder = converted(bundled_gguf())
    ref = transformers.LlamaForCausalLM.from_pretrained(str(folder), torch_dtype=torch.float32).eval()
    ids = torch.tensor([llm.encode("The quick brown fox jumps over the lazy dog, 42 times.")])
    with torch.inference_mode():
        want = ref(input_ids=ids).logits
        hidden, _ = llm.model(ids)
        got = llm.model.lm_head(hidden)
    assert (got - want).abs().max() < 1e-3 * want.abs().max()


def test_knows_language(llm):
    # wrong rotary layout or a bad dequantization gives a model that knows nothing
    answer = llm.generate(llm.chat("You are a helpful assistant.", "What is the capital of France?"), 12)
    assert "Paris" in answer
    good, bad = llm.score(["The cat sat on the mat.", "Mat the on sat cat the."], prefix="\n")
    assert good.logprob > bad.logprob + 20


def test_tokenizer_round_trip_and_digits(llm):
    text = "It's 2026: naïve café owners paid $13.50 — twice!"
    assert llm.decode(llm.encode(text)) == text
    pieces = [llm.tokenizer.id_to_token(i) for i in llm.encode(" 1234")]
    assert pieces[-4:] == ["1", "2", "3", "4"]  # SmolLM splits numbers into single digits
    assert llm.tokenizer.token_to_id("<|im_end|>") == 2


def test_batched_scores_match_single_and_uncached(llm):
    texts = ["Hello there.", "A much longer sentence that needs padding in the batch.", "Yes"]
    prefix = "Transcript:\n"
    batched = llm.score(texts, prefix=prefix, end="\n")
    single = [llm.score([t], prefix=prefix, end="\n")[0] for t in texts]
    for b, s in zip(batched, single):
        assert b.tokens == s.tokens
        assert abs(b.logprob - s.logprob) < 1e-3
    # the same log-prob computed from one full forward pass, no prefix cache
    ids = llm.encode(prefix) + llm.encode(texts[1]) + llm.encode("\n")
    n = len(llm.encode(prefix))
    with torch.inference_mode():
        h, _ = llm.model(torch.tensor([ids]))
        logp = torch.log_softmax(llm.model.lm_head(h[0]), -1)
    direct = sum(float(logp[i - 1, ids[i]]) for i in range(n, len(ids)))
    assert abs(direct - batched[1].logprob) < 1e-3


def test_bad_model_paths_say_what_is_wrong(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such model"):
        load_llm(tmp_path / "missing.gguf")
    (tmp_path / "config.json").write_text('{"model_type": "gpt_neox"}')
    transformers_missing = pytest.raises((RuntimeError, OSError, ValueError))
    with transformers_missing:
        load_llm(tmp_path)
