"""Training, checkpoints and evaluation of Time-LLM on the long-horizon protocol
(:mod:`downstream.longterm`: lookback 96, H = 96 / 192 / 336 / 720, standard splits).

Loss = MSE + min(1, step / 500) x (0.5 x TAPR's loss + 0.3 x GRA-M's loss), each module's loss
as its ``aux_loss`` defines it (TAPR: direction CE + magnitude CE + 0.1 x consistency; GRA-M:
gate entropy + gate consistency). A checkpoint holds everything but the frozen language model's
weights; :func:`fit` resumes from it.
"""
from __future__ import annotations

import copy
import time
from pathlib import Path

import numpy as np
import torch

from ..longterm import SeriesWindows, batched_errors, masked_mse, scores
from .model import TimeLLM

EPOCHS, BATCH_SIZE, LR, PATIENCE = 10, 32, 1e-3, 3
WARMUP_STEPS = 500
AUX_WEIGHTS = {"tapr": 0.5, "gram": 0.3}


def aux_factor(step: int) -> float:
    """The auxiliary losses' warm-up factor, min(1, step / 500)."""
    return min(1.0, step / WARMUP_STEPS)


def loss_terms(model: TimeLLM, inputs: tuple, labels: torch.Tensor, step: int,
               rows=None) -> dict:
    """``{"total", "mse", <module>: its aux loss}`` (scalars) of one batch: inputs (values
    (B, T, N), features (B, T, D) or None), labels (B, H, N), rows (B,) the samples' times."""
    forecast, aux = model(*inputs, rows=rows)
    out = {"mse": masked_mse(forecast, labels)}
    mean, std = aux["norm"]
    target = ((torch.nan_to_num(labels) - mean) / std).permute(0, 2, 1).reshape(-1, model.horizon)
    total = out["mse"]
    for name, module in model.prefix_modules.items():
        out[name] = module.aux_loss(aux[name], aux["series"], target)
        total = total + aux_factor(step) * AUX_WEIGHTS.get(name, 1.0) * out[name]
    out["total"] = total
    return out


def trainable_state(model: TimeLLM) -> dict:
    """The state dict without the frozen language model's weights."""
    return {k: v for k, v in model.state_dict().items() if not k.startswith("llm.model.")}


def save_checkpoint(path, model: TimeLLM, optimizer, history: dict, rng) -> None:
    """Write the trainable state, the optimizer, the history, the best epoch's state and both
    RNGs (sampling, torch) to ``path`` (atomically: a temporary file, then a rename)."""
    path = Path(path)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save({"model": trainable_state(model), "optimizer": optimizer.state_dict(),
                "history": {k: v for k, v in history.items() if k != "_best_state"},
                "rng": rng.bit_generator.state, "torch_rng": torch.get_rng_state(),
                "best_state": history.get("_best_state")}, tmp)
    tmp.replace(path)


def load_checkpoint(path, model: TimeLLM, optimizer) -> tuple:
    """Restore a :func:`save_checkpoint` file into ``model`` and ``optimizer``; returns
    ``(history, rng)``.

    Raises:
        ValueError: the checkpoint does not fit the model (other sizes or modules).
    """
    saved = torch.load(path, weights_only=False)
    try:
        missing, unexpected = model.load_state_dict(saved["model"], strict=False)
    except RuntimeError as exc:  # a size mismatch: another horizon, width or module size
        raise ValueError(f"checkpoint: {path} does not fit this model "
                         f"({str(exc).splitlines()[-1].strip()[:200]}); allowed: a checkpoint "
                         "of the same configuration, or delete it") from None
    if unexpected or any(not k.startswith("llm.model.") for k in missing):
        raise ValueError(f"checkpoint: {path} does not fit this model (missing "
                         f"{[k for k in missing if not k.startswith('llm.model.')][:3]}, "
                         f"unexpected {unexpected[:3]}); allowed: a checkpoint of the same "
                         "configuration, or delete it")
    optimizer.load_state_dict(saved["optimizer"])
    rng = np.random.default_rng()
    rng.bit_generator.state = saved["rng"]
    torch.set_rng_state(saved["torch_rng"])  # dropout masks continue as in one run
    history = saved["history"]
    history["_best_state"] = saved["best_state"]
    return history, rng


def evaluate(model: TimeLLM, data: SeriesWindows, bounds: tuple, batch_size: int = 64) -> dict:
    """MSE / MAE (standardised) over the samples of ``bounds``, ``n_samples``."""
    model.eval()
    out = scores(*batched_errors(lambda inputs: model(*inputs)[0], data, bounds, batch_size))
    out.pop("curve")
    return out


def _epoch(model, optimizer, data, ts, rng, batch_size, history) -> float:
    model.train()
    losses = []
    for batch in np.array_split(rng.permutation(ts), max(1, len(ts) // batch_size)):
        terms = loss_terms(model, data.inputs(batch), data.labels(batch), history["step"],
                           rows=torch.as_tensor(batch))
        optimizer.zero_grad()
        terms["total"].backward()
        optimizer.step()
        history["step"] += 1
        losses.append(float(terms["mse"].detach()))
    return float(np.mean(losses))


def fit(model: TimeLLM, data: SeriesWindows, splits: dict, epochs: int = EPOCHS,
        lr: float = LR, batch_size: int = BATCH_SIZE, patience: int = PATIENCE, seed: int = 0,
        checkpoint=None, max_seconds: float | None = None) -> dict:
    """Train on the training windows (Adam over the trainable parameters), validation MSE
    after each epoch, the best epoch's weights restored at the end, early stop after
    ``patience`` epochs without improvement. With ``checkpoint`` (a path), the state is saved
    after every epoch and a run finding the file resumes from it. Returns the history:
    ``train_mse``, ``val_mse`` (per epoch), ``best_epoch``, ``step``, ``epoch_seconds``.

    Raises:
        ValueError: no training sample; a checkpoint of another configuration.
    """
    ts = data.starts(splits["train"])
    if len(ts) == 0:
        raise ValueError(f"horizon: H={data.horizon} leaves no training sample")
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    history = {"train_mse": [], "val_mse": [], "best_epoch": None, "step": 0, "seconds": 0.0}
    rng = np.random.default_rng(seed)
    if checkpoint is not None and Path(checkpoint).exists():
        history, rng = load_checkpoint(checkpoint, model, optimizer)
    start = time.perf_counter() - history["seconds"]
    while len(history["val_mse"]) < epochs and not _stop(history, patience, start, max_seconds):
        history["train_mse"].append(_epoch(model, optimizer, data, ts, rng, batch_size, history))
        history["val_mse"].append(evaluate(model, data, splits["val"])["mse"])
        val = history["val_mse"][-1]
        if np.isfinite(val) and val <= min(v for v in history["val_mse"] if np.isfinite(v)):
            history["best_epoch"] = len(history["val_mse"]) - 1
            history["_best_state"] = copy.deepcopy(trainable_state(model))
        history["seconds"] = time.perf_counter() - start
        if checkpoint is not None:
            save_checkpoint(checkpoint, model, optimizer, history, rng)
    if history.get("_best_state") is not None:
        model.load_state_dict(history["_best_state"], strict=False)
    history.pop("_best_state", None)
    history["epoch_seconds"] = history["seconds"] / max(len(history["val_mse"]), 1)
    return history


def _stop(history: dict, patience: int, start: float, max_seconds) -> bool:
    if history["best_epoch"] is not None and \
            len(history["val_mse"]) - 1 - history["best_epoch"] >= patience:
        return True
    return bool(max_seconds) and time.perf_counter() - start > max_seconds
