"""Chronological train / validation / test splits (rows counted from the start).

ETT hourly: train [0, 8640), validation [8640, 11520), test [11520, 14400) -- 12/4/4 months as in
Informer (Zhou et al., AAAI 2021) and TS2Vec; ETT 15-minute: four times those bounds; any other
series: 70% / 10% / 20%.
"""
from __future__ import annotations

SPLIT_NAMES = ("train", "val", "test")
_MONTH_HOURS = 30 * 24


def split_bounds(scheme: str, n_rows: int) -> dict:
    """{'train': (start, end), 'val': (...), 'test': (...)} for a series of ``n_rows`` steps.

    Raises:
        ValueError: unknown scheme, or a series shorter than the scheme's fixed bounds.
    """
    if scheme in ("ett_hour", "ett_minute"):
        unit = _MONTH_HOURS * (4 if scheme == "ett_minute" else 1)
        a, b, c = 12 * unit, 16 * unit, 20 * unit
        if n_rows < c:
            raise ValueError(f"data: {scheme} splits need {c} rows; the series has {n_rows}")
    elif scheme == "ratio":
        a, b, c = int(n_rows * 0.7), int(n_rows * 0.8), n_rows
    else:
        raise ValueError(f"split: got {scheme!r}; allowed: ['ett_hour', 'ett_minute', 'ratio']")
    return {"train": (0, a), "val": (a, b), "test": (b, c)}
