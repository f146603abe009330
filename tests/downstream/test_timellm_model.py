"""The base Time-LLM of ``downstream/timellm`` as a model (prompt, tokenizer, local LM, forward,
losses, dtype), over the tiny randomly initialised GPT-2 of the ``llm_dir`` fixture (width 32,
one block, two heads) with lookback 32, patch 16 / stride 8 (4 patches) and horizon 8, on real
ETTh1 rows (GRA-M is not tested here): the prompt's statistics come from the input window alone
(min / max / median / trend equal numpy on the window, the lags are the top-5 of the circular
autocorrelation by brute force, prompts and forecasts of sample t do not change when rows >= t
are rewritten and do when row t - 1 is, and a forecast does not depend on the other windows of
its batch: positions count unmasked tokens only, a fixed bug); the tokenizer (special tokens and
digits are single tokens, no [UNK] in real prompts, the saved tokenizer is the built one), the
random-init marker, ``load_llm`` / ``LanguageModel`` arguments, the LM frozen and bit-identical
after a training step that moves the rest; shapes (N = 1 and 7, encoder features, patches,
reprogramming) and denormalisation; the auxiliary-loss warm-up and the total loss with a TAPR
prefix; float64 end to end and no hard-coded CUDA or bfloat16 in the sources.
"""
from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from downstream.longterm import SeriesWindows
from downstream.timellm import (
    LanguageModel,
    NoLLM,
    PatchEmbedding,
    Reprogramming,
    TimeLLM,
    build_prompts,
    build_tokenizer,
    load_llm,
    top_lags,
)
from downstream.timellm.llm import RANDOM_INIT_MARKER
from downstream.timellm.modules import TAPRPrefix
from downstream.timellm.tapr import tapr_loss
from downstream.timellm.train import aux_factor, loss_terms

pytestmark = pytest.mark.usefixtures("one_torch_thread")

L, H, PATCH, STRIDE = 32, 8, 16, 8
DESC = "ETTh1 electricity transformer temperature hourly"
PROMPT_RE = re.compile(r"min value (\S+), max value (\S+), median value (\S+), the trend of "
                       r"input is (\w+), top 5 lags are : ([\d ]+) <\|end_prompt\|>")


def _windows(etth1, starts, length: int = L) -> torch.Tensor:
    return torch.as_tensor(np.stack([etth1[s:s + length] for s in starts]))


def _normalised(x: torch.Tensor) -> torch.Tensor:
    """x (B, T, N) -> (B * N, T) as the model normalises it (channel independence)."""
    mean = x.mean(1, keepdim=True)
    std = torch.sqrt(x.var(1, keepdim=True, unbiased=False) + 1e-5)
    return ((x - mean) / std).permute(0, 2, 1).reshape(-1, x.shape[1])


# ---------------------------------------------------------------- 1. prompt statistics

@pytest.mark.parametrize("length", [L, L + 1])
def test_prompt_statistics_equal_numpy_on_the_window(etth1, length):
    real = _normalised(_windows(etth1, [0, 700, 2500, 5000], length)[:, :, [0, 6]])
    walk = torch.randn(4, length, generator=torch.Generator().manual_seed(1)).cumsum(1)
    x = torch.cat([real, walk])
    prompts = build_prompts(x, DESC, H)
    assert len(prompts) == len(x)
    for row, prompt in zip(x.numpy(), prompts):
        assert f"forecast the next {H} steps given the previous {length} steps" in prompt
        low, high, median, trend, lags = PROMPT_RE.search(prompt).groups()
        assert low == f"{np.min(row):.3f}" and high == f"{np.max(row):.3f}"
        # torch.median (as Time-LLM's code) is the lower middle value for an even length
        assert median == f"{np.sort(row)[(length - 1) // 2]:.3f}"
        if length % 2:
            assert median == f"{np.median(row):.3f}"
        change = float(row[-1]) - float(row[0])  # sum of first differences
        assert abs(change) > 1e-3, "pick windows with a clear trend"
        assert trend == ("upward" if change > 0 else "downward")
        assert lags.split() == [str(v) for v in top_lags(torch.as_tensor(row)[None])[0].tolist()]


def test_top_lags_are_the_highest_circular_autocorrelations(etth1):
    x = torch.cat([_normalised(_windows(etth1, [100, 3000], L)),
                   torch.sin(torch.arange(L) * 2 * np.pi / 6)[None] + 0.01 * torch.arange(L)])
    lags = top_lags(x)
    assert lags.shape == (len(x), 5) and lags.dtype == torch.int64
    for row, got in zip(x.double().numpy(), lags.numpy()):
        corr = np.array([np.dot(row, np.roll(row, -k)) for k in range(L)])  # brute force
        order = np.argsort(-corr)
        # corr[k] == corr[L - k]: ties are ordered by float noise, so compare the values,
        # and the set of lags wherever the 5th and 6th values are apart
        np.testing.assert_allclose(corr[got], corr[order[:5]], rtol=1e-4, atol=1e-4)
        assert got[0] == 0
        if corr[order[4]] - corr[order[5]] > 1e-3:
            assert set(got.tolist()) == set(order[:5].tolist())
    assert set(lags[-1].tolist()) >= {0, 6, L - 6}  # period 6 found
    with pytest.raises(ValueError, match="^k: got"):
        top_lags(x[:, :4])


def test_prompt_and_forecast_of_sample_t_ignore_rows_from_t_on(llm, etth1, timellm_model):
    values = np.ascontiguousarray(etth1[:200])
    t = 120
    rewritten = values.copy()
    rewritten[t:] = np.random.default_rng(0).normal(5.0, 3.0, rewritten[t:].shape)
    touched = values.copy()
    touched[t - 1] += 4.0  # the window's last row
    data, future, last = (SeriesWindows(v, v, L, H) for v in (values, rewritten, touched))
    model = timellm_model(llm).eval()
    with torch.no_grad():
        x, x_future, x_last = (d.inputs([t])[0] for d in (data, future, last))
        assert torch.equal(x, x_future) and not torch.equal(x, x_last)
        assert not torch.equal(data.labels([t]), future.labels([t]))
        prompts = [build_prompts(_normalised(v), DESC, H) for v in (x, x_future, x_last)]
        assert prompts[0] == prompts[1] and prompts[0] != prompts[2]
        forecasts = [model(v)[0] for v in (x, x_future, x_last)]
    assert torch.equal(forecasts[0], forecasts[1])
    assert not torch.allclose(forecasts[0], forecasts[2])


def test_forecast_of_sample_t_in_a_batch_ignores_rows_from_t_on(llm, etth1, timellm_model):
    values = np.ascontiguousarray(etth1[:200, -1:])
    t, later = 70, 86  # the batch mate's window [54, 86) holds rows t.. of the future
    rewritten = values.copy()
    rewritten[t:] = -values[t:]
    data, future = SeriesWindows(values, values, L, H), SeriesWindows(rewritten, rewritten, L, H)
    model = timellm_model(llm).eval()
    with torch.no_grad():
        padded = [model.prompt_embeddings(_normalised(d.inputs([t, later])[0]))[1].shape[1]
                  for d in (data, future)]
        if padded[0] == padded[1]:
            pytest.fail(f"precondition: the rewrite must change the batch's prompt length {padded}")
        assert torch.equal(data.inputs([t])[0], future.inputs([t])[0])
        alone = model(data.inputs([t])[0])[0][0]
        before = model(data.inputs([t, later])[0])[0][0]
        after = model(future.inputs([t, later])[0])[0][0]
    assert torch.allclose(before, alone, atol=1e-5)  # before the rewrite: same padding
    assert torch.allclose(before, after, atol=1e-5)  # off by ~0.05 now


# ------------------------------------------------------------ 2. tokenizer and language model

def test_tokenizer_special_tokens_digits_and_vocabulary(llm, etth1):
    tok = llm.tokenizer
    assert tok.get_vocab() == build_tokenizer(DESC).get_vocab()  # the saved one is the built one
    for special in ("<|start_prompt|>", "<|end_prompt|>", "[PAD]", "[UNK]"):
        assert tok.tokenize(special) == [special]
        assert tok(special, add_special_tokens=False).input_ids == \
            [tok.convert_tokens_to_ids(special)]
    assert tok.tokenize("<|start_prompt|> min value<|end_prompt|>") == \
        ["<|start_prompt|>", "min", "value", "<|end_prompt|>"]
    assert tok.tokenize("9876543210") == list("9876543210")
    assert tok.tokenize("-12.305") == ["-", "1", "2", ".", "3", "0", "5"]
    digit_ids = tok.convert_tokens_to_ids(list("0123456789"))
    assert len(set(digit_ids)) == 10 and tok.unk_token_id not in digit_ids
    prompts = build_prompts(_normalised(_windows(etth1, [0, 1000, 4000])), DESC, H)
    start, end = tok.convert_tokens_to_ids(["<|start_prompt|>", "<|end_prompt|>"])
    for ids in tok(prompts).input_ids:
        assert tok.unk_token_id not in ids
        assert ids[0] == start and ids[-1] == end  # nothing added around the prompt
    assert tok.unk_token_id in tok("zebra crossing").input_ids  # unknown words do map to [UNK]


def test_random_init_marker_and_loaders(llm, llm_dir, tmp_path):
    marker = json.loads((llm_dir / RANDOM_INIT_MARKER).read_text())
    assert marker["random_init"] is True
    assert llm.random_init is True and "random weights" in llm.description
    unmarked = shutil.copytree(llm_dir, tmp_path / "copy")
    (unmarked / RANDOM_INIT_MARKER).unlink()
    plain = load_llm(unmarked)
    assert isinstance(plain, LanguageModel) and plain.random_init is False
    assert "random weights" not in plain.description and plain.d_llm == 32
    none = load_llm("none", d_llm=24)
    assert isinstance(none, NoLLM) and none.d_llm == 24
    with pytest.raises(ValueError, match="^llm: got"):
        LanguageModel("/nonexistent")
    with pytest.raises(ValueError, match="^llm: got"):
        load_llm(tmp_path / "missing")


def test_language_model_frozen_through_a_training_step(llm, ett, timellm_model):
    model = timellm_model(llm)
    frozen = {k: v.clone() for k, v in llm.model.state_dict().items()}
    assert frozen and not any(p.requires_grad for p in llm.parameters())
    trainable = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    assert not any(n.startswith("llm.") for n in trainable)
    data = SeriesWindows(ett, ett, L, H)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    model.train()
    assert not llm.model.training  # frozen LM: no dropout even in training mode
    loss_terms(model, data.inputs([40, 60, 90]), data.labels([40, 60, 90]), 0)["total"].backward()
    optimizer.step()
    assert all(p.grad is None for p in llm.parameters())
    for k, v in llm.model.state_dict().items():
        assert torch.equal(v, frozen[k]), k
    for prefix in ("mapping.", "patch.linear.", "reprogram.", "head.1."):
        names = [n for n in trainable if n.startswith(prefix)]
        assert names, prefix
        for n in names:
            assert not torch.equal(dict(model.named_parameters())[n].detach(), trainable[n]), n


# ------------------------------------------------------------------------------ 3. shapes

@pytest.mark.parametrize("n_vars", [1, 7])
def test_forward_shapes(llm, etth1, n_vars, timellm_model):
    model = timellm_model(llm).eval()
    shapes = []
    hook = model.reprogram.register_forward_hook(lambda m, i, o: shapes.append(o.shape))
    x = _windows(etth1, [0, 300, 900])[:, :, :n_vars]
    with torch.no_grad():
        forecast, aux = model(x)
    hook.remove()
    assert forecast.shape == (3, H, n_vars) and torch.isfinite(forecast).all()
    assert shapes == [(3 * n_vars, model.n_patches, llm.d_llm)]
    assert aux["norm"][0].shape == aux["norm"][1].shape == (3, 1, n_vars)
    assert aux["series"].shape == (3 * n_vars, L)


def test_encoder_features_enter_the_forecast(llm, etth1, timellm_model):
    d = 3
    model = timellm_model(llm, encoder_dim=d).eval()
    x = _windows(etth1, [0, 500])[:, :, :2]
    features = torch.randn(2, L, d, generator=torch.Generator().manual_seed(2))
    pooled = model.pool(features)
    assert pooled.shape == (2, model.n_patches, d)
    assert torch.allclose(pooled[:, 0], features[:, :PATCH].mean(1), atol=1e-6)
    last = torch.cat([features[:, L - PATCH + STRIDE:], features[:, -1:].expand(-1, STRIDE, -1)], 1)
    assert torch.allclose(pooled[:, -1], last.mean(1), atol=1e-6)  # replicate-padded patch
    with torch.no_grad():
        forecast = model(x, features)[0]
        other = model(x, -3.0 * features)[0]
    assert forecast.shape == (2, H, 2)
    assert (forecast - other).abs().max() > 1e-4  # ignored features would give equal ones
    with pytest.raises(ValueError, match="^encoder:"):
        model(x)


@pytest.mark.parametrize("length,patch,stride", [(32, 16, 8), (33, 16, 8), (16, 16, 8),
                                                 (96, 16, 8), (40, 12, 5)])
def test_patch_count(length, patch, stride):
    embedding = PatchEmbedding(4, patch, stride)
    x = torch.randn(3, length)
    patches = embedding.patches(x)
    assert patches.shape == (3, embedding.n_patches(length), patch)
    padded = torch.cat([x, x[:, -1:].expand(-1, stride)], 1)  # end padding: the last value
    for i in (0, patches.shape[1] - 1):
        assert torch.equal(patches[:, i], padded[:, i * stride:i * stride + patch])
    assert (patches.shape[1] - 1) * stride + patch >= length  # the last value is in a patch
    assert embedding(x).shape == (3, embedding.n_patches(length), 4)


def test_reprogramming_shape_and_seq_len_check(llm):
    torch.manual_seed(0)
    layer = Reprogramming(d_model=8, d_llm=32, heads=2, d_keys=4)
    assert layer(torch.randn(5, 4, 8), torch.randn(20, 32)).shape == (5, 4, 32)
    with pytest.raises(ValueError, match="^seq_len:"):
        TimeLLM(PATCH - 1, H, llm, patch_len=PATCH)


def test_denormalisation_follows_scale_and_shift(llm, etth1, timellm_model):
    model = timellm_model(llm).eval()
    x = _windows(etth1, [0, 500, 1000])
    scale = torch.tensor([1.0, 2.0, 4.0, 8.0, 1.5, 3.0, 10.0])
    shift = torch.tensor([1.0, -3.0, 0.5, 7.0, 0.0, 2.0, -5.0])
    with torch.no_grad():
        forecast, aux = model(x)
        moved, moved_aux = model(x * scale + shift)
    # eps = 1e-5 in the std and 3-decimal prompt numbers: equal up to float noise
    assert ((moved - (forecast * scale + shift)).abs() <= 2e-3 * scale).all()
    assert torch.allclose(moved_aux["norm"][0], aux["norm"][0] * scale + shift, atol=1e-4)
    expected_std = torch.sqrt((aux["norm"][1] ** 2 - 1e-5) * scale ** 2 + 1e-5)
    assert torch.allclose(moved_aux["norm"][1], expected_std, rtol=1e-5)
    assert not torch.allclose(moved, forecast, atol=0.1)


# ------------------------------------------------------------------ 4. auxiliary loss weights

def test_aux_factor_warm_up():
    assert aux_factor(0) == 0.0
    assert aux_factor(250) == 0.5
    assert aux_factor(500) == aux_factor(10_000) == 1.0
    assert 0 < aux_factor(1) < aux_factor(499) < 1


def test_loss_terms_with_tapr(llm, etth1, timellm_model):
    tapr = TAPRPrefix(L, H, llm.d_llm, channels=4, heads=2)
    model = timellm_model(llm, prefix_modules={"tapr": tapr}).eval()
    starts = [0, 400]
    x = _windows(etth1, starts)[:, :, :3]
    labels = torch.as_tensor(np.stack([etth1[s + L:s + L + H, :3] for s in starts]))
    with torch.no_grad():
        forecast, aux = model(x)
        # the target as the model sees it: per (sample, variable) row, normalised by the window
        mean, std = x.mean(1), torch.sqrt(x.var(1, unbiased=False) + 1e-5)
        target = torch.stack([(labels[b, :, n] - mean[b, n]) / std[b, n]
                              for b in range(2) for n in range(3)])
        series = _normalised(x)
        expected_tapr = tapr_loss(aux["tapr"], target, series[:, -1])["total"]
        for step in (0, 250, 10_000):
            terms = loss_terms(model, (x, None), labels, step)
            assert torch.allclose(terms["mse"], ((forecast - labels) ** 2).mean(), rtol=1e-6)
            assert torch.allclose(terms["tapr"], expected_tapr, atol=1e-6)
            assert terms["tapr"] > 0
            expected = terms["mse"] + aux_factor(step) * 0.5 * terms["tapr"]
            assert torch.equal(terms["total"], expected)
            if step == 0:
                assert torch.equal(terms["total"], terms["mse"])
            else:
                assert terms["total"] > terms["mse"]


# -------------------------------------------------------------------------- 5. device / dtype

def test_float64_model_runs_in_float64(llm_dir, etth1, timellm_model):
    model = timellm_model(LanguageModel(llm_dir), prefix_modules={
        "tapr": TAPRPrefix(L, H, 32, channels=4, heads=2)}).double()
    x = _windows(etth1, [0, 800])[:, :, :2].double()
    labels = torch.as_tensor(np.stack([etth1[s + L:s + L + H, :2] for s in (0, 800)])).double()
    forecast, aux = model(x)
    assert forecast.dtype == torch.float64 and torch.isfinite(forecast).all()
    assert aux["norm"][0].dtype == aux["series"].dtype == torch.float64
    terms = loss_terms(model, (x, None), labels, 300)
    assert terms["total"].dtype == torch.float64
    terms["total"].backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert grads and all(g is not None and g.dtype == torch.float64 for g in grads)


def test_sources_have_no_hard_coded_cuda_or_bfloat16():
    folder = Path(sys.modules[TimeLLM.__module__].__file__).parent  # downstream/timellm
    # gram.py (GRA-M) is another team's work in progress and not covered here
    files = {p.name: p.read_text() for p in folder.glob("*.py") if p.name != "gram.py"}
    assert {"__init__.py", "prompt.py", "llm.py", "model.py", "train.py", "modules.py",
            "tapr.py"} <= set(files)
    for name, text in files.items():
        assert ".cuda(" not in text, name
        assert "bfloat16" not in text, name
