"""Small causal language models for N-best reranking and stage-direction tagging."""
from .lm import CausalLM, TextScore
from .load import DEFAULT_LLM, cache_dir, load_llm

__all__ = ["CausalLM", "TextScore", "DEFAULT_LLM", "cache_dir", "load_llm"]
