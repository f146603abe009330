"""Time-LLM over raw values or a searched encoder (``ctsnas forecast --model timellm``): the
model of :mod:`downstream.timellm` on the long-horizon protocol, with the TAPR and GRA-M
modules on request and a local language model only."""
from __future__ import annotations

import hashlib
import time
from pathlib import Path

import torch

import downstream as ds
from downstream import longterm, timellm
from downstream.timellm import train

from .titans import encoder_features, load_titans_task

#: Where the default language model is built (GPT-2 architecture, random weights).
DEFAULT_LLM = Path("runs") / "llm" / "tiny-gpt2"


def description(task: ds.ForecastTask) -> str:
    """The dataset description of the prompt: name, variables and sampling."""
    return (f"{task.name}: {len(task.targets)} variables ({', '.join(task.targets[:8])}), "
            f"{len(task.x)} steps")


def resolve_llm(llm: str | None, task: ds.ForecastTask):
    """The language model module: ``none`` (the no-LM ablation), a local model directory, or
    (None) the project's small random-weight GPT-2, built at :data:`DEFAULT_LLM` if absent.

    Raises:
        ValueError: a path that is not a local model directory.
    """
    if llm is None:
        if not (DEFAULT_LLM / "config.json").is_file():
            timellm.build_tiny_llm(DEFAULT_LLM, description(task))
        llm = str(DEFAULT_LLM)
    return timellm.load_llm(llm, description=description(task))


def check_gram_data(task: ds.ForecastTask, horizon: int) -> None:
    """Refuse GRA-M on a training split too short for it: a training window never retrieves a
    bank item within L + H rows of itself, so the split needs at least 4 (L + H) rows.

    Raises:
        ValueError: ``gram: ...`` naming the split's length and what is needed.
    """
    start, end = task.splits["train"]
    need = 4 * (longterm.LOOKBACK + horizon)
    if end - start < need:
        raise ValueError(f"gram: got a training split of {end - start} rows on {task.name}; "
                         f"allowed: at least {need} rows (4 x (lookback {longterm.LOOKBACK} + "
                         f"H {horizon})), so training windows find bank items away from "
                         "their own span")


def build_model(task: ds.ForecastTask, horizon: int, llm, tapr: bool = False,
                gram: bool = False, encoder_dim: int | None = None, bank_path=None,
                rebuild_bank: bool = False, seed: int = 0) -> timellm.TimeLLM:
    """Time-LLM for ``task`` with the requested modules (GRA-M's memory bank from the training
    split, loaded from ``bank_path`` when it exists unless ``rebuild_bank``)."""
    torch.manual_seed(seed)
    modules = {}
    if tapr:
        modules["tapr"] = timellm.TAPRPrefix(longterm.LOOKBACK, horizon, llm.d_llm)
    if gram:
        bank = timellm.MemoryBank.load_or_build(
            bank_path, task.x[:, task.n_covariates:], task.splits["train"], longterm.LOOKBACK,
            horizon, rebuild=rebuild_bank, seed=seed)
        modules["gram"] = timellm.GRAMPrefix(bank, longterm.LOOKBACK, horizon, llm.d_llm)
    return timellm.TimeLLM(longterm.LOOKBACK, horizon, llm, description(task),
                           encoder_dim=encoder_dim, prefix_modules=modules)


def run_timellm(data: str, horizon: int, data_dir=None, tapr: bool = False, gram: bool = False,
                llm: str | None = None, encoder: str | None = None, seed: int = 0,
                epochs: int = train.EPOCHS, work_dir=None, rebuild_bank: bool = False,
                max_seconds: float | None = None, **options) -> dict:
    """Train Time-LLM (checkpointed under ``work_dir``, resumed when its checkpoint exists),
    score the test split; returns MSE / MAE beside the raw-lookback Ridge, the training
    history, what the model read and which language model it used.

    Raises:
        ValueError: bad data, horizon, language model or encoder (before training).
    """
    task = load_titans_task(data, data_dir, horizon, **options)
    if gram:
        check_gram_data(task, horizon)
    features, described = (None, "raw values") if encoder is None else encoder_features(encoder,
                                                                                         task)
    lm = resolve_llm(llm, task)
    name = "timellm" + "+tapr" * tapr + "+gram" * gram + ("-nollm" if llm == "none" else "")
    work = Path(work_dir or Path("runs") / "timellm") / run_key(task, horizon, name, encoder,
                                                                seed, lm.description)
    work.mkdir(parents=True, exist_ok=True)
    model = build_model(task, horizon, lm, tapr, gram,
                        None if features is None else features.shape[1],
                        work / "memory_bank.pt", rebuild_bank, seed)
    windows = longterm.task_windows(task, horizon, longterm.LOOKBACK, features)
    start = time.perf_counter()
    history = train.fit(model, windows, task.splits, epochs, seed=seed,
                        checkpoint=work / "checkpoint.pt", max_seconds=max_seconds)
    test = train.evaluate(model, windows, task.splits["test"])
    return {"data": task.name, "horizon": horizon, "lookback": longterm.LOOKBACK,
            "model": name, "input": described, "llm": lm.description,
            "llm_random_init": bool(lm.random_init), "seed": seed, "train": history,
            "test": test, "seconds": time.perf_counter() - start, "work_dir": str(work),
            "parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
            "references": longterm.reference_rows(task, horizon)}


def run_key(task, horizon: int, name: str, encoder, seed: int, llm: str) -> str:
    """The checkpoint directory name of a Time-LLM run under ``runs/timellm``: changes with
    everything a checkpoint depends on (task, horizon H, variant name, encoder, seed, LLM)."""
    digest = hashlib.sha1(f"{encoder}|{llm}".encode()).hexdigest()[:8]
    return f"{task.name}-H{horizon}-{name}-s{seed}-{digest}"
