"""Datasets, leak-free splits and the TS2Vec forecasting probe. Imports nothing else of ours."""
from .datasets import REGISTRY, SeriesData, list_datasets, load
from .probes import PADDING, RIDGE_ALPHAS, encode_task, probe, probe_encoder, probe_lookback
from .splits import split_bounds
from .task import ForecastTask, check_horizons, make_task

__all__ = ["PADDING", "REGISTRY", "RIDGE_ALPHAS", "ForecastTask", "SeriesData", "encode_task",
           "check_horizons", "list_datasets", "load", "make_task", "probe", "probe_encoder",
           "probe_lookback", "split_bounds"]
