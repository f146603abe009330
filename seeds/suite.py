"""The seed task suite: slices of the shared datasets, each probed at two horizons.

A *slice* is (dataset, input columns, forecast targets, row range, univariate or multivariate);
a *task* is a slice plus one forecast horizon H. As AutoCTS++ (Wu et al., VLDB Journal 2024,
Sec. 6.1) slices its datasets, slices differ in length, variables and period, so one source
dataset yields several tasks; every task is tagged with its ``dataset`` so an evaluation can hold
whole datasets out. One trained encoder serves both horizons of its slice (the probe is the only
per-horizon step), so tasks of one slice share their encoders and differ in their labels.

Inside a slice the rows split chronologically 70/10/20 (``ratio``), the scaler is fitted on the
slice's training rows only.
"""
from __future__ import annotations

import dataclasses

import downstream as ds

#: The slices. ``columns`` None = every column; ``targets`` None = every input column
#: (multivariate) or the dataset's default target (univariate); ``rows`` = [start, end).
SLICES = (
    {"dataset": "ETTh1", "univariate": True, "columns": ["OT"], "rows": [0, 4000],
     "horizons": [24, 168]},
    {"dataset": "ETTh1", "univariate": False, "columns": ["HUFL", "HULL", "MUFL", "OT"],
     "rows": [6000, 10000], "horizons": [24, 168]},
    {"dataset": "ETTh2", "univariate": True, "columns": ["OT"], "rows": [2000, 5000],
     "horizons": [24, 168]},
    {"dataset": "ETTh2", "univariate": False, "columns": None, "rows": [9000, 13000],
     "horizons": [24, 168]},
    {"dataset": "ETTm1", "univariate": True, "columns": ["OT"], "rows": [0, 6000],
     "horizons": [24, 96]},
    {"dataset": "ETTm1", "univariate": False, "columns": ["LUFL", "LULL", "OT"],
     "rows": [20000, 24000], "horizons": [24, 96]},
    {"dataset": "ETTm2", "univariate": True, "columns": ["OT"], "rows": [30000, 34000],
     "horizons": [24, 96]},
    {"dataset": "ETTm2", "univariate": False, "columns": None, "rows": [50000, 53000],
     "horizons": [24, 96]},
    {"dataset": "weather", "univariate": True, "columns": ["OT"], "rows": [0, 5000],
     "horizons": [24, 144]},
    {"dataset": "weather", "univariate": False,
     "columns": ["p (mbar)", "T (degC)", "rh (%)", "wv (m/s)", "OT"],
     "rows": [20000, 24000], "horizons": [24, 144]},
    {"dataset": "exchange_rate", "univariate": True, "columns": ["OT"], "rows": [0, 4000],
     "horizons": [7, 30]},
    {"dataset": "exchange_rate", "univariate": False, "columns": None, "rows": [3000, 7588],
     "horizons": [7, 30]},
    {"dataset": "illness", "univariate": True, "columns": ["OT"], "rows": [0, 966],
     "horizons": [12, 24]},
    {"dataset": "illness", "univariate": False, "columns": None, "rows": [0, 966],
     "horizons": [12, 24]},
    {"dataset": "los_loop", "univariate": False, "columns": "first:8", "rows": [0, 2016],
     "horizons": [12, 48]},
    {"dataset": "los_loop", "univariate": False, "columns": "range:100:116", "rows": [0, 2016],
     "horizons": [12, 48]},
)


def slice_id(sl: dict) -> str:
    """A readable, unique id, e.g. ``ETTh1-u-0-4000``."""
    kind = "u" if sl["univariate"] else "m"
    cols = sl["columns"]
    tag = "all" if cols is None else (cols.replace(":", "") if isinstance(cols, str)
                                      else str(len(cols)))
    return f"{sl['dataset']}-{kind}{'' if sl['univariate'] else tag}-{sl['rows'][0]}-{sl['rows'][1]}"


def suite(slices=SLICES) -> list:
    """The tasks: one dict per (slice, horizon) with ``task_id``, ``slice_id``, ``dataset``,
    ``horizon`` and the slice fields; plain JSON."""
    out = []
    for sl in slices:
        for h in sl["horizons"]:
            out.append({**{k: v for k, v in sl.items() if k != "horizons"},
                        "slice_id": slice_id(sl), "horizon": int(h),
                        "task_id": f"{slice_id(sl)}-h{h}"})
    return out


def slices_of(tasks: list) -> dict:
    """slice_id -> {slice fields, ``horizons``: sorted horizons of the given tasks}."""
    out = {}
    for t in tasks:
        entry = out.setdefault(t["slice_id"], {**{k: v for k, v in t.items()
                                                  if k not in ("horizon", "task_id")},
                                               "horizons": []})
        entry["horizons"] = sorted({*entry["horizons"], t["horizon"]})
    return out


def _columns(spec, columns: list) -> list:
    if spec is None:
        return list(columns)
    if isinstance(spec, str):
        kind, *bounds = spec.split(":")
        if kind == "first":
            return list(columns[:int(bounds[0])])
        return list(columns[int(bounds[0]):int(bounds[1])])
    missing = [c for c in spec if c not in columns]
    if missing:
        raise ValueError(f"columns: {missing[0]!r} is not a column; allowed: {columns}")
    return list(spec)


def load_slice(sl: dict, data_dir=None) -> ds.ForecastTask:
    """The slice as a forecasting task (rows and columns cut first, then split and scaled).

    Raises:
        ValueError: missing dataset file (says where it looked), unknown column, row range
            outside the series.
    """
    data = ds.load(sl["dataset"], data_dir)
    start, end = sl["rows"]
    if not 0 <= start < end <= len(data.values):
        raise ValueError(f"rows: got {sl['rows']}; allowed: 0 <= start < end <= "
                         f"{len(data.values)} for {sl['dataset']}")
    cols = _columns(sl["columns"], data.columns)
    idx = [data.columns.index(c) for c in cols]
    adjacency = None if data.adjacency is None else data.adjacency[idx][:, idx]
    dates = None if data.dates is None else data.dates[start:end]
    part = dataclasses.replace(data, name=slice_id(sl), values=data.values[start:end, idx],
                               columns=cols, dates=dates, split="ratio", adjacency=adjacency,
                               default_target=cols[-1] if sl["univariate"] else None)
    return ds.make_task(part, univariate=sl["univariate"])
