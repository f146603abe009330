"""Datasets, leak-free splits and the TS2Vec forecasting probe. Imports nothing else of ours."""
from .datasets import REGISTRY, SeriesData, list_datasets, load
from .probes import (PADDING, RIDGE_ALPHAS, ProbeMemoryError, RidgeModel, check_probe_memory,
                     encode_task, estimate_probe_bytes, estimate_task_probe_bytes, fit_ridge,
                     probe, probe_encoder, probe_lookback)
from .splits import split_bounds
from .task import ForecastTask, check_horizons, make_task

__all__ = ["PADDING", "REGISTRY", "RIDGE_ALPHAS", "ForecastTask", "ProbeMemoryError",
           "RidgeModel", "SeriesData", "check_horizons", "check_probe_memory", "encode_task",
           "estimate_probe_bytes", "estimate_task_probe_bytes", "fit_ridge", "list_datasets",
           "load", "make_task", "probe", "probe_encoder", "probe_lookback", "split_bounds"]
