"""The frozen language model of Time-LLM, loaded only from a local directory, and the no-LM
ablation of Tan et al. (NeurIPS 2024, "Are Language Models Actually Useful for Time Series
Forecasting?", LLM2Attn: the language model replaced by one attention layer).

Any Hugging Face causal LM directory works (``transformers.AutoModel`` and ``AutoTokenizer``
with ``local_files_only``). :func:`build_tiny_llm` writes the project's default: a small
GPT-2-architecture model built from a config with random weights, and the prompt tokenizer;
its directory holds ``ctsnas_random_init.json`` and every result over it says so.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from .prompt import build_tokenizer

RANDOM_INIT_MARKER = "ctsnas_random_init.json"


def _quiet_transformers() -> None:
    """No progress bars or advisory logging from ``transformers`` in our outputs."""
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()


def build_tiny_llm(path, description: str = "", width: int = 64, layers: int = 2,
                   heads: int = 4, seed: int = 0) -> Path:
    """Save a randomly initialised GPT-2 (``width`` wide, ``layers`` blocks, 512 positions)
    and the prompt tokenizer (:func:`~.prompt.build_tokenizer` over ``description``) to
    ``path``; returns it. Nothing is downloaded."""
    from transformers import GPT2Config, GPT2Model

    _quiet_transformers()
    path = Path(path)
    tokenizer = build_tokenizer(description)
    start, end = tokenizer.convert_tokens_to_ids(["<|start_prompt|>", "<|end_prompt|>"])
    config = GPT2Config(vocab_size=len(tokenizer), n_embd=width, n_layer=layers, n_head=heads,
                        n_positions=512, pad_token_id=tokenizer.pad_token_id,
                        bos_token_id=start, eos_token_id=end)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = GPT2Model(config)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    (path / RANDOM_INIT_MARKER).write_text(json.dumps(
        {"random_init": True, "seed": seed, "note": "GPT-2 architecture, random weights, "
         "built by ctsnas; not a pretrained language model"}))
    return path


class LanguageModel(nn.Module):
    """A frozen local causal LM: ``embed(ids (B', L)) -> (B', L, d_llm)``, ``forward(embeds
    (B', L, d_llm), mask (B', L)) -> last hidden states (B', L, d_llm)``, ``word_embeddings``
    (V, d_llm), ``tokenizer``, ``random_init`` (True for :func:`build_tiny_llm`'s model).

    Raises:
        ValueError: ``path`` is not a directory holding a model and a tokenizer.
    """

    def __init__(self, path):
        super().__init__()
        from transformers import AutoModel, AutoTokenizer

        _quiet_transformers()
        path = Path(path)
        if not (path / "config.json").is_file():
            raise ValueError(f"llm: got {str(path)!r}; allowed: a local directory holding a "
                             "Hugging Face model (config.json, weights, tokenizer) or 'none'")
        self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.model = AutoModel.from_pretrained(path, local_files_only=True).float()
        self.model.requires_grad_(False)
        self.model.eval()
        self.random_init = (path / RANDOM_INIT_MARKER).is_file()
        self.description = f"{path.name} ({'random weights' if self.random_init else 'pretrained'})"
        self.d_llm = self.model.get_input_embeddings().weight.shape[1]

    def train(self, mode: bool = True):
        super().train(mode)
        self.model.eval()  # frozen: no dropout
        return self

    @property
    def word_embeddings(self) -> torch.Tensor:
        return self.model.get_input_embeddings().weight

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        return self.model.get_input_embeddings()(ids)

    def forward(self, embeds: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Positions count the unmasked tokens only, so a series' patches sit at the same
        positions whatever the other prompts of the batch (their padding) look like."""
        positions = (mask.long().cumsum(1) - 1).clamp(min=0)
        return self.model(inputs_embeds=embeds, attention_mask=mask,
                          position_ids=positions).last_hidden_state


class NoLLM(nn.Module):
    """The no-LM ablation (LLM2Attn, Tan et al., NeurIPS 2024): one multi-head self-attention
    layer with a residual and LayerNorm in place of the language model; the prompt tokenizer
    and a trainable word-embedding table of width ``d_llm`` keep the rest of Time-LLM
    unchanged. Same interface as :class:`LanguageModel`."""

    random_init = False
    description = "none (one attention layer, no language model)"

    def __init__(self, d_llm: int = 64, heads: int = 4, description: str = ""):
        super().__init__()
        self.tokenizer = build_tokenizer(description)
        self.d_llm = d_llm
        self.table = nn.Embedding(len(self.tokenizer), d_llm)
        self.attention = nn.MultiheadAttention(d_llm, heads, batch_first=True)
        self.norm = nn.LayerNorm(d_llm)

    @property
    def word_embeddings(self) -> torch.Tensor:
        return self.table.weight

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        return self.table(ids)

    def forward(self, embeds: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        causal = torch.ones(embeds.shape[1], embeds.shape[1], dtype=torch.bool,
                            device=embeds.device).triu(1)
        out, _ = self.attention(embeds, embeds, embeds, attn_mask=causal,
                                key_padding_mask=~mask.bool(), need_weights=False)
        return self.norm(embeds + out)


def load_llm(path, d_llm: int = 64, description: str = "") -> nn.Module:
    """``"none"`` -> :class:`NoLLM` (width ``d_llm``), else :class:`LanguageModel` of the
    local directory ``path``.

    Raises:
        ValueError: not a local model directory.
    """
    if str(path) == "none":
        return NoLLM(d_llm, description=description)
    return LanguageModel(path)
