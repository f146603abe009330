"""Titans memory-as-context forecaster for continuous series (Behrouz et al., 2025) on the
``titans-pytorch`` package, its long-horizon protocol and three online test modes (A, B, C).
Imports nothing outside ``downstream``: an encoder is an object passed in."""
from .model import RevIN, TitansConfig, TitansForecaster, detach_states
from .protocol import (HORIZONS, LOOKBACK, MODES, SeriesWindows, causal_features, check_horizon,
                       check_mode, errors_mode_a, errors_stream, evaluate_titans, fit,
                       reference_rows, scores, task_windows)

__all__ = ["HORIZONS", "LOOKBACK", "MODES", "RevIN", "SeriesWindows", "TitansConfig",
           "TitansForecaster", "causal_features", "check_horizon", "check_mode",
           "detach_states", "errors_mode_a", "errors_stream", "evaluate_titans", "fit",
           "reference_rows", "scores", "task_windows"]
