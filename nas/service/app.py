"""The HTTP API of ``ctsnas serve`` (FastAPI; OpenAPI docs at ``/docs``).

    POST   /query                 zero-shot ranking (``ctsnas query``); train_top > 0: a job
    POST   /query/upload          the same on an uploaded CSV (multipart, size-limited)
    POST   /searches              start a search job (``ctsnas search`` options)
    GET    /searches              the jobs: id, dataset, state, trials done/failed, best so far
    GET    /searches/{id}         one job with its leaderboard, reference rows, best spec, test
    DELETE /searches/{id}         cancel (finished trials stay in the store)
    POST   /searches/{id}/resume  continue an interrupted, cancelled or failed job
    GET    /searches/{id}/chart.svg   best validation MSE so far against trials

Refusals: 422 with ``{"detail": [{"loc": ["body", FIELD], "msg": ...}]}`` naming the field;
401 for a missing or wrong token (when the server has one: ``Authorization: Bearer TOKEN``, or
``?token=TOKEN`` once in a browser, kept in a cookie); 404 unknown job; 409 a job in the wrong
state; 413 an upload over the limit.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import anyio
from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.responses import JSONResponse, Response

from ..engine.results import best_so_far_image, read_json, run_summary
from ..engine.store import DB_NAME, RunStore
from ..zeroshot.query import query
from . import pages
from .jobs import JobError, Jobs
from .requests import (
    QueryRequest,
    RequestError,
    SearchRequest,
    query_config,
    search_config,
)

COOKIE = "ctsnas_token"


@dataclass
class Settings:
    """The server's options (``ctsnas serve``): where runs live, where data may be read, the
    Ray cluster of its jobs, the token, the upload limit (bytes), the jobs run at once and the
    queries ranked at once."""
    runs_root: Path
    data_dir: Path | None = None
    address: str | None = None
    token: str | None = None
    max_upload: int = 20 * 2 ** 20
    max_jobs: int = 1
    query_workers: int = 2


def refusal(exc: RequestError) -> JSONResponse:
    """A refused request as FastAPI's own 422 body, the field named in ``loc``."""
    return JSONResponse({"detail": [{"loc": ["body", exc.field], "msg": str(exc),
                                     "type": "value_error"}]}, status_code=422)


class Service:
    """What the routes share: the settings, the jobs and the query slots."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.jobs = Jobs(settings.runs_root, settings.max_jobs)
        self._limiter = None

    def submit_search(self, request: SearchRequest) -> dict:
        s = self.settings
        config = search_config(request, s.data_dir, s.address)
        return self.jobs.submit("search", request.model_dump(exclude_none=True), config)

    def run_query(self, request: QueryRequest, data: str | None = None,
                  arrived: float | None = None) -> tuple:
        """``(status code, body)``: the ranked specs with ``seconds`` (from arrival, queueing
        included) and ``queue_seconds`` (waiting for a query slot), or a queued job."""
        start = time.perf_counter()
        arrived = start if arrived is None else arrived
        s = self.settings
        config, task = query_config(request, s.data_dir, s.address, data)
        if config.get("train_top"):
            job = self.jobs.submit("query", request.model_dump(exclude_none=True), config)
            return 202, {"job": job}
        try:
            result = query(config, task=task)
        except ValueError as exc:
            raise RequestError(str(exc)) from None
        result["seconds"] = round(time.perf_counter() - arrived, 3)
        result["queue_seconds"] = round(start - arrived, 3)
        if data:
            result["data"] = request.data
        return 200, result

    async def query_slot(self, request: QueryRequest, data: str | None = None) -> tuple:
        """:meth:`run_query` in a worker thread once one of the ``query_workers`` slots is
        free; a waiting request holds no thread, so the rest of the API stays responsive."""
        if self._limiter is None:  # made inside the event loop
            self._limiter = anyio.CapacityLimiter(self.settings.query_workers)
        return await anyio.to_thread.run_sync(self.run_query, request, data,
                                              time.perf_counter(), limiter=self._limiter)

    def save_upload(self, body: bytes) -> str:
        """An uploaded CSV's bytes written under ``RUNS_ROOT/uploads`` (its SHA-256 and a
        random suffix, so two requests never share a file); the caller removes it.

        Raises:
            RequestError: (413) over ``max_upload`` bytes.
        """
        limit = self.settings.max_upload
        if len(body) > limit:
            raise RequestError(f"file: upload over {limit} bytes; allowed: at most {limit} "
                               "bytes (ctsnas serve --max-upload)", "file")
        folder = self.settings.runs_root / "uploads"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{hashlib.sha256(body).hexdigest()[:32]}-{secrets.token_hex(4)}.csv"
        path.write_bytes(body)
        return str(path)

    def detail(self, job_id: str) -> dict:
        """A job's status, its run summary (leaderboard, reference rows, best test once
        written), its best spec and a query job's result."""
        out = self.jobs.status(job_id)
        run_dir = self.jobs.run_dir(job_id)
        if (run_dir / DB_NAME).exists():
            try:
                out["summary"] = run_summary(run_dir)
            except ValueError as exc:
                out["summary_error"] = str(exc)
        for name, key in (("best_spec.json", "best_spec"), ("query.json", "query")):
            value = read_json(run_dir / name)
            if value:
                out[key] = value
        return out

    def chart(self, job_id: str) -> bytes:
        run_dir = self.jobs.run_dir(job_id)
        rows = []
        if (run_dir / DB_NAME).exists():
            store = RunStore(run_dir, readonly=True)
            try:
                rows = store.trials()
            finally:
                store.close()
        return best_so_far_image(rows, "svg")


def create_app(settings: Settings, start_jobs: bool = True) -> FastAPI:
    """The FastAPI application; with ``start_jobs`` its job scheduler starts with it."""
    service = Service(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        service.jobs.stop()  # the scheduler thread ends; running drivers go on (resumable)

    app = FastAPI(title="ctsnas", version="0.1.0", lifespan=lifespan,
                  description="Neural architecture search for contrastive time-series "
                              "representation learning: searches on a Ray cluster and "
                              "zero-shot queries of the T-AHC comparator.")
    app.state.service = service
    if start_jobs:
        service.jobs.start()
    _guard(app, settings)
    _api(app, service)
    pages.routes(app, service)
    return app


def _guard(app: FastAPI, settings: Settings) -> None:
    """The token check on every request and the upload limit on the declared length."""
    @app.middleware("http")
    async def check(request: Request, call_next):
        token = settings.token
        if token:
            given = (request.headers.get("authorization", "").removeprefix("Bearer ").strip()
                     or request.query_params.get("token") or request.cookies.get(COOKIE) or "")
            if not hmac.compare_digest(given.encode(), token.encode()):
                return JSONResponse({"detail": "token: missing or wrong; allowed: the "
                                     "server's token as 'Authorization: Bearer TOKEN'"},
                                    status_code=401)
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > settings.max_upload + 2 ** 16:
            return JSONResponse({"detail": f"file: request of {length} bytes; allowed: at "
                                 f"most {settings.max_upload} bytes of upload"},
                                status_code=413)
        response = await call_next(request)
        if token and request.query_params.get("token"):
            response.set_cookie(COOKIE, token, httponly=True, samesite="strict")
        return response

    @app.exception_handler(RequestError)
    async def refused(request: Request, exc: RequestError):
        if exc.field == "file" and "over" in str(exc):
            return JSONResponse({"detail": str(exc)}, status_code=413)
        return refusal(exc)

    @app.exception_handler(JobError)
    async def job_error(request: Request, exc: JobError):
        return JSONResponse({"detail": str(exc)}, status_code=exc.status)


def _api(app: FastAPI, service: Service) -> None:
    @app.get("/health")
    async def health() -> dict:
        return {"ok": True}

    @app.post("/query")
    async def post_query(request: QueryRequest):
        code, body = await service.query_slot(request)
        return JSONResponse(body, status_code=code)

    @app.post("/query/upload")
    async def post_query_upload(file: UploadFile = File(...), horizon: int = Form(24),
                                target: str | None = Form(None), samples: int = Form(20000),
                                top: int = Form(5), seed: int = Form(0)):
        path = service.save_upload(await file.read(service.settings.max_upload + 1))
        try:
            request = QueryRequest(data=file.filename or "upload.csv", horizon=horizon,
                                   target=target, samples=samples, top=top, seed=seed)
            return JSONResponse((await service.query_slot(request, data=path))[1])
        finally:  # the features are cached by content; the file is not needed again
            Path(path).unlink(missing_ok=True)

    @app.post("/searches", status_code=201)
    def post_search(request: SearchRequest) -> dict:
        return service.submit_search(request)

    @app.get("/searches")
    def get_searches() -> list:
        return service.jobs.list()

    @app.get("/searches/{job_id}")
    def get_search(job_id: str) -> dict:
        return service.detail(job_id)

    @app.delete("/searches/{job_id}")
    def delete_search(job_id: str) -> dict:
        return service.jobs.cancel(job_id)

    @app.post("/searches/{job_id}/resume")
    def resume_search(job_id: str) -> dict:
        return service.jobs.resume(job_id)

    @app.get("/searches/{job_id}/chart.svg")
    def chart(job_id: str) -> Response:
        return Response(service.chart(job_id), media_type="image/svg+xml")
