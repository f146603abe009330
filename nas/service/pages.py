"""The web page of ``ctsnas serve``: server-rendered HTML over the same data as the API (no
script, no build step, nothing fetched from elsewhere). ``/`` lists the jobs and holds the
search and query forms; ``/jobs/{id}`` shows a job's leaderboard with its reference rows and
the best-so-far chart (inline SVG drawn by matplotlib). Pages of active jobs refresh
themselves every few seconds."""
from __future__ import annotations

import json
import time
from html import escape

from fastapi import Form
from fastapi.responses import HTMLResponse, RedirectResponse

import search_spaces as ss

from .jobs import ACTIVE, RESUMABLE
from .requests import QueryRequest, RequestError, SearchRequest

REFRESH_SECONDS = 3
#: States whose page refreshes itself and offers Cancel.
LIVE = ACTIVE + ("queued",)
STYLE = """body{font-family:system-ui,sans-serif;margin:1.5em;max-width:70em;color:#222}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.25em .6em;
text-align:right}th{background:#f3f3f3}td.l,th.l{text-align:left}.error{color:#a00}
form{display:inline-block;vertical-align:top;border:1px solid #ddd;padding:.6em 1em;
margin:.5em 1em .5em 0}label{display:block;margin:.2em 0}input{width:9em}
.state-done{color:#070}.state-failed,.state-interrupted{color:#a00}.ref{color:#555}"""


def page(title: str, body: str, refresh: bool = False) -> str:
    meta = f'<meta http-equiv="refresh" content="{REFRESH_SECONDS}">' if refresh else ""
    return (f"<!doctype html><html><head><meta charset='utf-8'>{meta}<title>{escape(title)}"
            f"</title><style>{STYLE}</style></head><body>{body}</body></html>")


def fmt(value, digits: int = 4) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else escape(str(value))


def when(stamp) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(stamp)) + " UTC" if stamp else "-"


def job_table(jobs: list) -> str:
    head = ("<tr><th class=l>job</th><th class=l>data</th><th class=l>state</th><th>trials</th>"
            "<th>failed</th><th>best val MSE</th><th class=l>started</th><th>elapsed s</th></tr>")
    rows = "".join(
        f"<tr class=job data-id='{escape(j['id'])}'><td class=l><a href='/jobs/{escape(j['id'])}'>"
        f"{escape(j['id'])}</a></td><td class=l>{fmt(j['data'])}</td>"
        f"<td class='l state state-{escape(j['state'] or '')}'>{fmt(j['state'])}</td>"
        f"<td>{j['trials_done']}/{fmt(j['trials_planned'])}</td><td>{j['trials_failed']}</td>"
        f"<td>{fmt(j['best_val_mse'])}</td><td class=l>{when(j['started'])}</td>"
        f"<td>{fmt(j['elapsed_seconds'], 1)}</td></tr>" for j in jobs)
    return f"<table id=jobs>{head}{rows}</table>" if jobs else "<p id=jobs>No jobs yet.</p>"


def form(name: str, action: str, title: str, fields: list, button: str, error: str) -> str:
    """A POST form ``#NAME-form`` with its error line ``#NAME-error``; ``fields`` are
    ``(input name, default value, "number" or "")``."""
    err = f"<p class=error id={name}-error>{escape(error)}</p>" if error else ""
    inputs = "".join(f"<label>{f} <input name={f} value='{escape(str(v))}'"
                     + (" type=number min=1" if kind == "number" else "") + "></label>"
                     for f, v, kind in fields)
    return (f"<form id={name}-form method=post action='{action}'><h3>{title}</h3>{err}"
            f"{inputs}<button type=submit>{button}</button></form>")


def search_form(error: str = "") -> str:
    return form("search", "/ui/searches", "New search",
                [("data", "co2", ""), ("trials", 4, "number"), ("profile", "smoke", ""),
                 ("horizons", "24,48", ""), ("strategy", "random", "")], "Start search", error)


def query_form(error: str = "") -> str:
    return form("query", "/ui/query", "Zero-shot query",
                [("data", "co2", ""), ("horizon", 24, "number"), ("samples", 2000, "number"),
                 ("top", 5, "number")], "Rank", error)


def index(jobs: list, search_error: str = "", query_error: str = "") -> str:
    active = any(j["state"] in LIVE for j in jobs)
    return page("ctsnas", "<h1>ctsnas</h1><h2>Jobs</h2>" + job_table(jobs) + "<h2>Submit</h2>"
                + search_form(search_error) + query_form(query_error)
                + "<p><a href='/docs'>API (OpenAPI)</a></p>", refresh=active)


def leaderboard(summary: dict) -> str:
    horizons = [str(h) for h in summary["config"]["horizons"]]
    head = ("<tr><th>rank</th><th>trial</th><th class=l>hash</th>"
            + "".join(f"<th>H={h}</th>" for h in horizons)
            + "<th>mean</th><th>params</th><th>seconds</th><th class=l>status</th></tr>")
    rows, preset = [], ss.spec_hash(ss.preset("ts2vec"))
    for r in summary["leaderboard"]:
        label = " (ts2vec preset)" if r["spec_hash"] == preset else ""
        cells = "".join(f"<td>{fmt(r['metrics'][h]['val']['mse'] if r['metrics'] else None)}</td>"
                        for h in horizons)
        rows.append(f"<tr class=trial><td>{fmt(r['rank'])}</td><td>{r['trial']}</td>"
                    f"<td class=l>{escape(r['spec_hash'])}{label}</td>{cells}<td>{fmt(r['val_mse'])}"
                    f"</td><td>{fmt(r['n_params'])}</td><td>{fmt(r['seconds'], 1)}</td>"
                    f"<td class=l>{escape(r['status'])}</td></tr>")
    for name, ref in summary.get("references", {}).items():
        cells = "".join(f"<td>{fmt(ref['horizons'][h]['val']['mse'])}</td>" for h in horizons)
        rows.append(f"<tr class=ref><td>ref</td><td>-</td><td class=l>{escape(name)}</td>"
                    f"{cells}<td>{fmt(ref['val_mse'])}</td><td></td><td></td><td></td></tr>")
    return f"<table id=leaderboard>{head}{''.join(rows)}</table>"


def best_test(summary: dict) -> str:
    if "best_test" not in summary:
        return ""
    items = []
    for h, m in sorted(summary["best_test"].items(), key=lambda kv: int(kv[0])):
        refs = "".join(f"; {escape(n)} {fmt(r['mse'])}" for n, r in
                       (m.get("references") or {}).items())
        items.append(f"<li>H={escape(h)}: MSE {fmt(m['test']['mse'])}, MAE "
                     f"{fmt(m['test']['mae'])}{refs}</li>")
    return "<h3>Best spec on the test split (computed once)</h3><ul id=best-test>" + \
        "".join(items) + "</ul>"


def job_page(detail: dict, chart_svg: str) -> str:
    j = detail
    buttons = ""
    if j["state"] in LIVE:
        buttons = (f"<form method=post action='/ui/searches/{escape(j['id'])}/cancel'>"
                   "<button id=cancel>Cancel</button></form>")
    elif j["state"] in RESUMABLE:
        buttons = (f"<form method=post action='/ui/searches/{escape(j['id'])}/resume'>"
                   "<button id=resume>Resume</button></form>")
    summary = detail.get("summary")
    body = (f"<p><a href='/'>all jobs</a></p><h1>{escape(j['id'])}</h1>{job_table([j])}"
            + (f"<p class=error>{escape(j['error'])}</p>" if j.get("error") else "") + buttons
            + f"<h2>Best validation MSE so far</h2><div id=chart>{chart_svg}</div>"
            + ("<h2>Leaderboard</h2>" + leaderboard(summary) + best_test(summary)
               if summary else "<p>No trial finished yet.</p>")
            + (f"<h3>Best spec</h3><pre id=best-spec>{escape(_json(detail['best_spec']))}</pre>"
               if "best_spec" in detail else ""))
    return page(f"ctsnas {j['id']}", body, refresh=j["state"] in LIVE)


def query_page(result: dict) -> str:
    rows = "".join(f"<tr class=spec><td>{t['predicted_rank']}</td><td>{fmt(t['score'])}</td>"
                   f"<td class=l>{escape(t['spec_hash'])}</td></tr>" for t in result["top"])
    return page("ctsnas query", f"<p><a href='/'>all jobs</a></p><h1>Query: "
                f"{escape(str(result['data']))}, H={result['horizon']}</h1><p>"
                f"{result['n_candidates']} candidates ranked in {result['seconds']} s</p>"
                f"<table id=ranked><tr><th>rank</th><th>score</th><th class=l>hash</th></tr>"
                f"{rows}</table>")


def _json(spec: dict) -> str:
    """A spec one cell per line."""
    return "\n".join(f"{k}: {json.dumps(v, sort_keys=True)}" for k, v in spec.items())


def routes(app, service) -> None:
    """The page's routes on ``app``."""
    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def home():
        return index(service.jobs.list())

    @app.get("/jobs/{job_id}", response_class=HTMLResponse, include_in_schema=False)
    def job(job_id: str):
        svg = service.chart(job_id).decode()
        return job_page(service.detail(job_id), svg[svg.find("<svg"):])  # no XML prolog

    @app.post("/ui/searches", include_in_schema=False)
    def ui_search(data: str = Form(...), trials: int = Form(...), profile: str = Form("small"),
                  horizons: str = Form("24,48"), strategy: str = Form("random")):
        try:
            hs = [int(h) for h in horizons.split(",") if h.strip()]
        except ValueError:
            return HTMLResponse(index(service.jobs.list(), search_error=(
                f"horizons: got {horizons!r}; allowed: comma-separated ints")), 422)
        try:
            job = service.submit_search(SearchRequest(
                data=data, trials=trials, profile=profile, horizons=hs, strategy=strategy))
        except RequestError as exc:
            return HTMLResponse(index(service.jobs.list(), search_error=str(exc)), 422)
        return RedirectResponse(f"/jobs/{job['id']}", status_code=303)

    @app.post("/ui/query", response_class=HTMLResponse, include_in_schema=False)
    async def ui_query(data: str = Form(...), horizon: int = Form(24),
                       samples: int = Form(2000), top: int = Form(5)):
        try:
            _, result = await service.query_slot(QueryRequest(data=data, horizon=horizon,
                                                              samples=samples, top=top))
        except RequestError as exc:
            return HTMLResponse(index(service.jobs.list(), query_error=str(exc)), 422)
        return query_page(result)

    @app.post("/ui/searches/{job_id}/{action}", include_in_schema=False)
    def ui_action(job_id: str, action: str):
        if action not in ("cancel", "resume"):
            return HTMLResponse("unknown action", 404)
        (service.jobs.cancel if action == "cancel" else service.jobs.resume)(job_id)
        return RedirectResponse(f"/jobs/{job_id}", status_code=303)
