"""Chronological train / validation / test splits (rows counted from the start).

ETT hourly: train [0, 8640), validation [8640, 11520), test [11520, 14400) -- 12/4/4 months as in
Informer (Zhou et al., AAAI 2021) and TS2Vec; ETT 15-minute: four times those bounds; any other
series: 70% / 10% / 20%.

Online schemes (FSNet, Pham et al., ICLR 2023, as its code splits the data): ETT hourly train
[0, 2880), validation [2880, 3600), test [3600, 14400) -- 4/1/15 months; ETT 15-minute: four
times those bounds; any other series: 20% / 5% / 75%.
"""
from __future__ import annotations

SPLIT_NAMES = ("train", "val", "test")
SCHEMES = ("ett_hour", "ett_minute", "ratio", "online_hour", "online_minute", "online_ratio")
#: The online scheme of a dataset's standard scheme.
ONLINE_SCHEME = {"ett_hour": "online_hour", "ett_minute": "online_minute", "ratio": "online_ratio"}
_MONTH_HOURS = 30 * 24


def split_bounds(scheme: str, n_rows: int) -> dict:
    """{'train': (start, end), 'val': (...), 'test': (...)} for a series of ``n_rows`` steps.

    Raises:
        ValueError: unknown scheme, or a series shorter than the scheme's fixed bounds.
    """
    if scheme in ("ett_hour", "ett_minute", "online_hour", "online_minute"):
        unit = _MONTH_HOURS * (4 if scheme.endswith("minute") else 1)
        months = (4, 5, 20) if scheme.startswith("online") else (12, 16, 20)
        a, b, c = (m * unit for m in months)
        if n_rows < c:
            raise ValueError(f"data: {scheme} splits need {c} rows; the series has {n_rows}")
    elif scheme == "ratio":
        a, b, c = int(n_rows * 0.7), int(n_rows * 0.8), n_rows
    elif scheme == "online_ratio":
        a, b, c = int(n_rows * 0.2), int(n_rows * 0.25), n_rows
    else:
        raise ValueError(f"split: got {scheme!r}; allowed: {list(SCHEMES)}")
    return {"train": (0, a), "val": (a, b), "test": (b, c)}
