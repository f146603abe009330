"""Time-LLM (Jin et al., ICLR 2024) with the optional TAPR and GRA-M modules, over a local
language model only (or none: the LLM2Attn ablation). Imports nothing outside ``downstream``:
an encoder is an object passed in."""
from .llm import LanguageModel, NoLLM, build_tiny_llm, load_llm
from .model import PatchEmbedding, Reprogramming, TimeLLM
from .prompt import build_prompts, build_tokenizer, top_lags, window_statistics

__all__ = ["LanguageModel", "NoLLM", "PatchEmbedding", "Reprogramming", "TimeLLM",
           "build_prompts", "build_tiny_llm", "build_tokenizer", "load_llm", "top_lags",
           "window_statistics"]
