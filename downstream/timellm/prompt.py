"""Prompt-as-prefix of Time-LLM (Jin et al., ICLR 2024, Sec. 3.1 and Fig. 4): a dataset
description, the task, and statistics of the input window only (min, max, median, trend,
top-5 lags), and the word-level tokenizer the project builds for its small local language
model (no download: the vocabulary comes from the prompt template itself)."""
from __future__ import annotations

import torch

N_LAGS = 5
TEMPLATE = ("<|start_prompt|> Dataset description: {description} Task description: forecast "
            "the next {horizon} steps given the previous {seq_len} steps information; Input "
            "statistics: min value {min}, max value {max}, median value {median}, the trend of "
            "input is {trend}, top {n_lags} lags are : {lags} <|end_prompt|>")
SPECIAL_TOKENS = ("[PAD]", "[UNK]", "<|start_prompt|>", "<|end_prompt|>")


def top_lags(x: torch.Tensor, k: int = N_LAGS) -> torch.Tensor:
    """The k lags of highest autocorrelation of each series, by FFT (Wiener-Khinchin), as
    Time-LLM's ``calcute_lags``: x (B', T) -> (B', k) int64 lags in [0, T).

    Raises:
        ValueError: k > T.
    """
    if k > x.shape[-1]:
        raise ValueError(f"k: got {k}; allowed: at most the window length {x.shape[-1]}")
    spectrum = torch.fft.rfft(x, dim=-1)
    corr = torch.fft.irfft(spectrum * torch.conj(spectrum), n=x.shape[-1], dim=-1)
    return torch.topk(corr, k, dim=-1).indices


def window_statistics(x: torch.Tensor) -> dict:
    """Statistics of each input window, from the window alone: x (B', T) -> dict of (B',)
    tensors ``min``, ``max``, ``median``, ``trend`` (sum of first differences; > 0 upward)
    and ``lags`` (B', 5)."""
    return {"min": x.min(dim=-1).values, "max": x.max(dim=-1).values,
            "median": x.median(dim=-1).values, "trend": x.diff(dim=-1).sum(dim=-1),
            "lags": top_lags(x)}


def _number(v: float) -> str:
    return f"{v:.3f}"


def build_prompts(x: torch.Tensor, description: str, horizon: int) -> list:
    """One prompt per series: x (B', T) normalised windows -> B' strings (see
    :data:`TEMPLATE`), built from :func:`window_statistics` of x only."""
    stats = {k: v.detach().cpu() for k, v in window_statistics(x).items()}
    return [TEMPLATE.format(description=description, horizon=horizon, seq_len=x.shape[-1],
                            min=_number(stats["min"][i]), max=_number(stats["max"][i]),
                            median=_number(stats["median"][i]),
                            trend="upward" if stats["trend"][i] > 0 else "downward",
                            n_lags=N_LAGS, lags=" ".join(str(int(v)) for v in stats["lags"][i]))
            for i in range(x.shape[0])]


def build_tokenizer(extra_text: str = ""):
    """A word-level tokenizer (``transformers.PreTrainedTokenizerFast``) whose vocabulary is
    the prompt template's words, digits, punctuation and the words of ``extra_text`` (e.g.
    dataset descriptions); any other word maps to ``[UNK]``. Digits are single tokens, so
    every number is spelled digit by digit."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    pre = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(),
                                   pre_tokenizers.Digits(individual_digits=True),
                                   pre_tokenizers.Punctuation()])
    words = set()
    for text in (TEMPLATE, extra_text, "0123456789 upward downward - ."):
        words.update(w for w, _ in pre.pre_tokenize_str(text))
    words -= set(SPECIAL_TOKENS)
    vocab = {w: i for i, w in enumerate(list(SPECIAL_TOKENS) + sorted(words))}
    core = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    core.pre_tokenizer = pre
    core.add_special_tokens(list(SPECIAL_TOKENS))  # matched whole, before pre-tokenizing
    return PreTrainedTokenizerFast(tokenizer_object=core, pad_token="[PAD]", unk_token="[UNK]")
