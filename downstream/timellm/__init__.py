"""Time-LLM (Jin et al., ICLR 2024) with the optional TAPR and GRA-M modules, over a local
language model only (or none: the LLM2Attn ablation). Imports nothing outside ``downstream``:
an encoder is an object passed in."""
from .llm import LanguageModel, NoLLM, build_tiny_llm, load_llm
from .bank import MemoryBank
from .gram import GRAM
from .model import PatchEmbedding, Reprogramming, TimeLLM
from .modules import GRAMPrefix, TAPRPrefix
from .prompt import build_prompts, build_tokenizer, top_lags, window_statistics
from .tapr import TrendAwarePatchRouter

__all__ = ["GRAM", "GRAMPrefix", "LanguageModel", "MemoryBank", "NoLLM", "PatchEmbedding",
           "Reprogramming", "TAPRPrefix", "TimeLLM", "TrendAwarePatchRouter",
           "build_prompts", "build_tiny_llm", "build_tokenizer", "load_llm", "top_lags",
           "window_statistics"]
