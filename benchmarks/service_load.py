"""Load on ``ctsnas serve``: N concurrent ``POST /query`` (co2, H=24, the same seed) against a
server started here on a free loopback port (own session, a temporary runs root), after one
warm-up query that is not counted. Measures the client-side latency of each request (p50,
p95, max, seconds from send to full response), the server's own mean ``seconds`` (slot wait
plus ranking) and ``queue_seconds`` (wait for one of the ``--query-workers`` slots), the
throughput (answered requests per second of wall time from the first send to the last answer)
and the latency of ``GET /health`` polled while the queries run. Checks that every request is
answered with 200 and none is lost, that each answer holds ``top`` valid, distinct specs
(their keys those of a spec, valid for :func:`search_spaces.validate`, their ``spec_hash``
recomputed) and that all answers rank the same top as the warm-up and as the library called
in this process (:func:`nas.zeroshot.query.query`). Exits 1 when a request is lost or wrong.
Writes ``benchmarks/results/service_load.json``. Latency depends on the machine's load.

    .venv/bin/python benchmarks/service_load.py [--requests 50] [--concurrency 50]
        [--samples 2000] [--query-workers 2] [--horizon 24] [--top 5]
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np

import search_spaces as ss

ROOT = Path(__file__).resolve().parent.parent
OUT = Path(__file__).parent / "results" / "service_load.json"
START_TIMEOUT, REQUEST_TIMEOUT, STOP_TIMEOUT = 180.0, 900.0, 30.0


def free_port() -> int:
    """A port free on 127.0.0.1 now (the kernel's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port: int, runs_root: Path, workers: int, log) -> subprocess.Popen:
    """``ctsnas serve`` in its own session (so its whole process group can be stopped)."""
    cmd = [sys.executable, "-m", "nas.cli", "serve", "--port", str(port), "--runs-root",
           str(runs_root), "--query-workers", str(workers)]
    return subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)


def wait_healthy(client: httpx.Client, proc: subprocess.Popen) -> float:
    """Seconds until ``GET /health`` answers 200. Raises RuntimeError if the server exits or
    does not answer within START_TIMEOUT."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < START_TIMEOUT:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with code {proc.returncode} before /health")
        try:
            if client.get("/health", timeout=2.0).status_code == 200:
                return time.perf_counter() - t0
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"server not healthy after {START_TIMEOUT:.0f} s")


def stop_server(proc: subprocess.Popen) -> dict:
    """SIGTERM to the server's process group; SIGKILL to it after STOP_TIMEOUT. -> how it
    ended."""
    if proc.poll() is not None:
        return {"already_exited": True, "returncode": proc.returncode}
    t0 = time.perf_counter()
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(STOP_TIMEOUT)
        killed = False
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        killed = True
    return {"returncode": proc.returncode, "stop_seconds": round(time.perf_counter() - t0, 2),
            "killed": killed}


def post_query(client: httpx.Client, body: dict) -> dict:
    """One request: its status, client-side seconds and JSON body (or the error)."""
    t0 = time.perf_counter()
    try:
        r = client.post("/query", json=body, timeout=REQUEST_TIMEOUT)
        seconds = time.perf_counter() - t0
        try:
            payload = r.json()
        except ValueError:
            payload = {"raw": r.text[:300]}
        return {"status": r.status_code, "seconds": seconds, "body": payload,
                "end": time.perf_counter()}
    except httpx.HTTPError as exc:
        return {"status": None, "seconds": time.perf_counter() - t0,
                "error": f"{type(exc).__name__}: {exc}", "end": time.perf_counter()}


def problems(result: dict, top: int, expected: list, keys: set) -> list:
    """What is wrong with one answer (empty when it is right)."""
    if result["status"] != 200:
        return [f"status {result['status']}: {result.get('error') or str(result['body'])[:200]}"]
    body, out = result["body"], []
    ranked = body.get("top")
    if not isinstance(ranked, list) or len(ranked) != top:
        got = len(ranked) if isinstance(ranked, list) else repr(ranked)
        return [f"top: {got} entries, expected {top}"]
    hashes = [t.get("spec_hash") for t in ranked]
    if len(set(hashes)) != top:
        out.append(f"spec_hash not distinct: {hashes}")
    for i, t in enumerate(ranked):
        spec = t.get("spec")
        if not isinstance(spec, dict) or set(spec) != keys:
            out.append(f"top[{i}].spec keys {sorted(spec) if isinstance(spec, dict) else spec!r}")
            continue
        try:
            if ss.spec_hash(spec) != t["spec_hash"]:
                out.append(f"top[{i}]: spec_hash {t['spec_hash']} != hash of its spec")
        except ValueError as exc:
            out.append(f"top[{i}]: invalid spec ({exc})")
        if t.get("predicted_rank") != i + 1:
            out.append(f"top[{i}].predicted_rank {t.get('predicted_rank')}")
    if hashes != expected:
        out.append(f"ranking {hashes} differs from the expected {expected}")
    return out


def poll_health(client: httpx.Client, stop: threading.Event, out: list, t0: float) -> None:
    """``GET /health`` every 0.5 s until ``stop``: ``(sent at, latency)`` in seconds after
    ``t0`` (latency None: failed)."""
    while not stop.is_set():
        sent = time.perf_counter()
        try:
            ok = client.get("/health", timeout=REQUEST_TIMEOUT).status_code == 200
            out.append((sent - t0, time.perf_counter() - sent if ok else None))
        except httpx.HTTPError:
            out.append((sent - t0, None))
        stop.wait(0.5)


def read_log(log) -> str:
    log.flush()
    log.seek(0)
    return log.read()


def local_reference(body: dict) -> list:
    """The top hashes of the same query through the library, in this process."""
    from nas.zeroshot.query import query

    r = query({k: v for k, v in body.items()})
    return [t["spec_hash"] for t in r["top"]]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--query-workers", type=int, default=2)
    parser.add_argument("--horizon", type=int, default=24)
    parser.add_argument("--top", type=int, default=5)
    parser.add_argument("--out", default=str(OUT))
    args = parser.parse_args()
    import torch

    body = {"data": "co2", "horizon": args.horizon, "samples": args.samples, "top": args.top,
            "seed": 0}
    keys = set(ss.preset("ts2vec"))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    limits = httpx.Limits(max_connections=args.concurrency + 2,
                          max_keepalive_connections=args.concurrency + 2)
    with tempfile.TemporaryDirectory(prefix="ctsnas-load-") as tmp, \
            open(Path(tmp) / "server.log", "w+") as log, \
            httpx.Client(base_url=base, limits=limits, trust_env=False) as client:
        proc = start_server(port, Path(tmp) / "runs", args.query_workers, log)
        failed = None
        load_before = os.getloadavg()[0]
        try:
            startup = wait_healthy(client, proc)
            print(f"server on {base} healthy after {startup:.1f} s", flush=True)
            warm = post_query(client, body)
            if warm["status"] != 200:
                raise RuntimeError(f"warm-up failed: {warm.get('error') or warm['body']}")
            expected = [t["spec_hash"] for t in warm["body"]["top"]]
            print(f"warm-up {warm['seconds']:.2f} s (server {warm['body']['seconds']:.2f} s), "
                  f"top {[h[:8] for h in expected]}", flush=True)
            health, stop = [], threading.Event()
            t0 = time.perf_counter()
            poller = threading.Thread(target=poll_health, args=(client, stop, health, t0),
                                      daemon=True)
            poller.start()
            with ThreadPoolExecutor(args.concurrency) as pool:
                results = list(pool.map(lambda _: post_query(client, body),
                                        range(args.requests)))
            wall = max(r["end"] for r in results) - t0
            stop.set()
            poller.join()
        except (RuntimeError, KeyError, TypeError) as exc:
            failed = f"{type(exc).__name__}: {exc}"
        finally:
            stopped = stop_server(proc)  # before reading the log: it may still be writing
            server_log = read_log(log)
    if failed:
        print(f"FAILED: {failed}\nserver stopped: {stopped}")
        print("server log (tail):\n" + server_log[-3000:])
        return 1
    reference = local_reference(body)

    errors = []
    if reference != expected:
        errors.append(f"warm-up ranking {expected} differs from the library's {reference}")
    for i, r in enumerate(results):
        errors += [f"request {i}: {p}" for p in problems(r, args.top, expected, keys)]
    answered = [r for r in results if r["status"] == 200]
    lost = args.requests - len(answered)
    if stopped.get("killed") or stopped.get("already_exited"):
        errors.append(f"server stop: {stopped}")

    lat = np.array([r["seconds"] for r in results])

    def srv(key: str):
        return round(float(np.mean([r["body"][key] for r in answered])), 3) if answered else None

    ok_health = [h for _, h in health if h is not None]
    worst_health = max((x for x in health if x[1] is not None), key=lambda x: x[1],
                       default=(None, None))
    outside = [r["seconds"] - r["body"]["seconds"] for r in answered]
    figures = {
        "answered_200": len(answered), "lost": lost,
        "latency_p50_seconds": round(float(np.percentile(lat, 50)), 3),
        "latency_p95_seconds": round(float(np.percentile(lat, 95)), 3),
        "latency_max_seconds": round(float(lat.max()), 3),
        "server_seconds_mean": srv("seconds"), "server_queue_seconds_mean": srv("queue_seconds"),
        "server_total_seconds_mean": srv("total_seconds"),
        "server_rank_seconds_mean": srv("rank_seconds"),
        "client_minus_server_seconds_mean": round(float(np.mean(outside)), 3) if outside else None,
        "client_minus_server_seconds_max": round(float(np.max(outside)), 3) if outside else None,
        "wall_seconds": round(wall, 2),
        "throughput_rps": round(len(answered) / wall, 3),
        "warmup_seconds": round(warm["seconds"], 3),
        "startup_seconds": round(startup, 2),
        "health_under_load_max_seconds": round(max(ok_health), 3) if ok_health else None,
        "health_under_load_p50_seconds":
            round(float(np.percentile(ok_health, 50)), 3) if ok_health else None,
        "health_under_load_max_sent_at_seconds":
            None if worst_health[0] is None else round(worst_health[0], 2),
        "health_polls": len(health), "health_failed": len(health) - len(ok_health),
    }
    print(f"{len(answered)}/{args.requests} answered 200, {lost} lost, "
          f"{len(errors)} problems")
    print(f"latency (client) p50 {figures['latency_p50_seconds']:.2f} s, p95 "
          f"{figures['latency_p95_seconds']:.2f} s, max {figures['latency_max_seconds']:.2f} s")
    print(f"server mean seconds {figures['server_seconds_mean']} s, mean queue_seconds "
          f"{figures['server_queue_seconds_mean']} s, mean ranking (total_seconds) "
          f"{figures['server_total_seconds_mean']} s; client minus server seconds mean "
          f"{figures['client_minus_server_seconds_mean']} s, max "
          f"{figures['client_minus_server_seconds_max']} s")
    print(f"throughput {figures['throughput_rps']:.2f} requests/s ({len(answered)} in "
          f"{wall:.1f} s, {args.query_workers} query workers)")
    print(f"GET /health under load: p50 {figures['health_under_load_p50_seconds']} s, max "
          f"{figures['health_under_load_max_seconds']} s (sent "
          f"{figures['health_under_load_max_sent_at_seconds']} s into the load), "
          f"{figures['health_polls']} polls, {figures['health_failed']} failed")
    print(f"server stopped: {stopped}")
    for e in errors[:20]:
        print("PROBLEM", e)

    result = {
        "settings": {"requests": args.requests, "concurrency": args.concurrency,
                     "query_workers": args.query_workers, "request": body},
        "figures": figures, "ok": not errors, "problems": errors[:20],
        "server_stop": stopped,
        "machine": {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                    "python": platform.python_version(),
                    "load_average_1min": {"before": round(load_before, 2),
                                          "after": round(os.getloadavg()[0], 2)}},
        "date": datetime.date.today().isoformat(),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(f"-> {args.out}")
    if errors and server_log.strip():
        print("server log (tail):\n" + server_log[-3000:])
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
