"""Request bodies of the service and their checks, all before any work starts.

A request names its data as a registered dataset (``ctsnas datasets``), as a CSV path
*relative to the server's* ``--data-dir`` (a path resolving outside it is refused), or, for a
query, as an uploaded CSV. The server sets the data directory, the Ray address and the run
directory: a client cannot name a path to read or write. Every refusal is a
:class:`RequestError` naming the field, the value and what is allowed (HTTP 422).
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from downstream.datasets import REGISTRY

from ..engine.evaluate import load_options, prepare
from ..engine.runner import check_search
from ..zeroshot.query import check_query


class RequestError(ValueError):
    """A refused request: ``field`` is the request field the message names."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field or field_of(message)


def field_of(message: str) -> str:
    """The field a library message names first (``trials: got 0; ...`` -> ``trials``)."""
    m = re.match(r"([a-z_]+)[.:]", message)
    return m.group(1) if m else "body"


class SearchRequest(BaseModel):
    """``POST /searches``: the options of ``ctsnas search`` (same names and defaults; see
    ``ctsnas search --help``), without the paths the server sets (data directory, run
    directory, Ray address)."""
    model_config = ConfigDict(extra="forbid")
    data: str = Field(description="dataset name, or a CSV path relative to --data-dir")
    trials: int = Field(description="number of trials to run")
    target: str | None = None
    univariate: bool | None = None
    horizons: list[int] | None = Field(None, description="forecast horizons H (default [24, 48])")
    profile: str | None = Field(None, description="smoke, screen, small (default) or paper")
    seed: int | None = None
    workers: int | None = Field(None, description="parallel trials")
    cpus_per_trial: int | None = None
    trial_timeout: float | None = Field(None, description="seconds per trial")
    strategy: str | None = Field(None, description="random (default), evolution, tpe, guided")
    population: int | None = None
    sample_size: int | None = None
    features: str | None = None
    downstream: str | None = Field(None, description="probe (default), fsnet or titans")
    fidelity: str | None = None
    rungs: list[int] | None = None
    eta: int | None = None
    time_budget: float | None = Field(None, description="seconds")
    sort_dates: bool | None = None
    dedupe: bool | None = None
    date_format: str | None = None
    max_memory: int | None = Field(None, description="bytes")
    extra_specs: list[dict] | None = Field(None, description="specs to evaluate first")


class QueryRequest(BaseModel):
    """``POST /query``: the options of ``ctsnas query``; ``train_top`` > 0 makes it a job."""
    model_config = ConfigDict(extra="forbid")
    data: str = Field(description="dataset name, or a CSV path relative to --data-dir")
    horizon: int = Field(24, description="forecast horizon H")
    target: str | None = None
    univariate: bool | None = None
    samples: int = Field(20000, description="random candidates ranked")
    top: int = 5
    seed: int = 0
    train_top: int = Field(0, description="train the top K on Ray (a job)")
    profile: Literal["smoke", "screen", "small", "paper"] | None = None
    anchor_share: float | None = None
    compare_ts2vec: bool | None = None
    sort_dates: bool | None = None
    dedupe: bool | None = None
    date_format: str | None = None


def resolve_data(data: str, data_dir) -> dict:
    """``{"data", "data_dir"}`` for the search and query functions.

    Raises:
        RequestError: an unregistered name with no ``--data-dir``, or a path that is absolute,
            leaves ``--data-dir`` or is not a file in it.
    """
    if data in REGISTRY:
        return {"data": data, "data_dir": str(data_dir) if data_dir else None}
    allowed = (f"a dataset name ({', '.join(sorted(REGISTRY))}) or a CSV path inside the "
               "server's --data-dir")
    if not data_dir:
        raise RequestError(f"data: got {data!r}; allowed: {allowed.split(' or ')[0]} (the "
                           "server has no --data-dir)", "data")
    root = Path(data_dir).resolve()
    path = (root / data).resolve()
    if Path(data).is_absolute() or not path.is_relative_to(root):
        raise RequestError(f"data: {data!r} is outside --data-dir; allowed: {allowed}", "data")
    if not path.is_file():
        raise RequestError(f"data: {data!r} is not a file in --data-dir; allowed: {allowed}",
                           "data")
    return {"data": str(path), "data_dir": str(root)}


def search_config(request: SearchRequest, data_dir, address=None) -> dict:
    """The checked config of a search request (data loaded, horizons checked, nothing
    written).

    Raises:
        RequestError: as :func:`nas.engine.runner.check_search` and :func:`resolve_data`.
    """
    given = {k: v for k, v in request.model_dump().items() if v is not None}
    given.update(resolve_data(request.data, data_dir))
    if address:
        given["address"] = address
    try:
        check_search(given, Path("/nonexistent/ctsnas-check"), resume=False)
    except ValueError as exc:
        field = field_of(str(exc))
        raise RequestError(str(exc), field if field in SearchRequest.model_fields
                           else "data") from None
    return given


def query_config(request: QueryRequest, data_dir, address=None, data=None) -> tuple:
    """The checked config of a query and its loaded task, ``(config, task)`` (``data``: an
    uploaded file's path, set by the server).

    Raises:
        RequestError: bad options (:func:`nas.zeroshot.query.check_query`), data, target or
            horizon.
    """
    given = {k: v for k, v in request.model_dump().items() if v is not None}
    given.update({"data": data, "data_dir": None} if data else
                 resolve_data(request.data, data_dir))
    if address:
        given["address"] = address
    try:
        config = check_query(given)
        task = prepare(config["data"], config.get("data_dir"), config.get("target"),
                       config.get("univariate", False), [config["horizon"]],
                       **load_options(config))
    except ValueError as exc:
        field = {"horizons": "horizon"}.get(field_of(str(exc)), field_of(str(exc)))
        if field not in QueryRequest.model_fields:  # e.g. a column of the file
            field = "file" if data else "data"
        raise RequestError(str(exc), field) from None
    return given, task
