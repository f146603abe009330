"""Peak memory of the raw-lookback reference probe on multivariate los_loop (207 variables:
200 x 207 = 41,400 Ridge features, H = 12 -> 2,484 outputs), the case of issue 14 that grew
past 12 GB when the alpha grid kept all 13 fitted models. The probe runs in a fresh child
process (as ``ctsnas evaluate`` runs it: validation and test), whose peak RSS is read with
``resource.getrusage``; the pre-flight estimate (:func:`downstream.probes.estimate_probe_bytes`)
is printed next to it. ``--evaluate`` also runs the whole command
``ctsnas evaluate --data los_loop --arch ts2vec --profile smoke --horizons 12`` under
``/usr/bin/time -v`` (training, encoding and both reference rows; minutes on 2 cores).
Prints the figures and writes benchmarks/results/probe_memory.json.

    python benchmarks/probe_memory.py [--data-dir ../shared/datasets] [--evaluate]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "probe_memory.json"
GB = 2 ** 30


def _rss_bytes() -> int:
    """The current resident set size of this process (Linux /proc)."""
    status = Path("/proc/self/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) * 1024


def child(data: str, data_dir: str, horizons: list) -> dict:
    """Load, build the multivariate task and run the raw-lookback probe (val + test) here."""
    import numpy as np

    import downstream as ds
    from downstream.probes import estimate_task_probe_bytes

    task = ds.make_task(ds.load(data, data_dir))
    rss_before = _rss_bytes()
    start = time.perf_counter()
    result = ds.probe_lookback(task, horizons, test=True)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    d, p = ds.PADDING * len(task.inputs), max(horizons) * len(task.targets)
    return {"data": data, "variables": len(task.inputs), "features": d, "outputs": p,
            "horizons": horizons, "estimate_bytes": estimate_task_probe_bytes(task, horizons,
                                                                              test=True),
            "peak_rss_bytes": peak, "rss_before_probe_bytes": rss_before,
            "probe_seconds": round(seconds, 1),
            "former_13_models_coef_bytes": 13 * p * d * 8,
            "alpha": {str(h): r["alpha"] for h, r in result["horizons"].items()},
            "val_mse": {str(h): r["val"]["mse"] for h, r in result["horizons"].items()},
            "test_mse": {str(h): r["test"]["mse"] for h, r in result["horizons"].items()},
            "finite": bool(np.isfinite(result["val_mse"]))}


def run_evaluate(data_dir: str) -> dict:
    """The whole ``ctsnas evaluate`` command under ``/usr/bin/time -v``: peak RSS, exit code."""
    ctsnas = Path(sys.executable).with_name("ctsnas")
    cmd = ["/usr/bin/time", "-v", str(ctsnas), "evaluate", "--data", "los_loop", "--data-dir",
           data_dir, "--arch", "ts2vec", "--profile", "smoke", "--horizons", "12", "--json"]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    peak = re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr)
    out = {"command": " ".join(["ctsnas", *cmd[3:]]), "exit_code": proc.returncode,
           "seconds": round(time.perf_counter() - start, 1),
           "peak_rss_bytes": int(peak.group(1)) * 1024 if peak else None,
           "stderr_tail": proc.stderr.strip().splitlines()[-25:] if proc.returncode else []}
    if proc.returncode == 0:
        result = json.loads(proc.stdout)
        rows = {"model": result["model"], **result.get("references", {})}
        out["test_mse"] = {name: {h: r["test"]["mse"] for h, r in row["horizons"].items()}
                           for name, row in rows.items() if "horizons" in row}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "datasets"))
    parser.add_argument("--data", default="los_loop")
    parser.add_argument("--horizons", default="12")
    parser.add_argument("--evaluate", action="store_true", help="also run ctsnas evaluate")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    horizons = [int(h) for h in args.horizons.split(",")]
    if args.child:
        print(json.dumps(child(args.data, args.data_dir, horizons)))
        return
    cmd = [sys.executable, __file__, "--child", "--data", args.data, "--data-dir",
           args.data_dir, "--horizons", args.horizons]
    probe = json.loads(subprocess.run(cmd, capture_output=True, text=True,
                                      check=True).stdout.strip().splitlines()[-1])
    out = {"machine": {"cpus": os.cpu_count(), "ram_bytes": os.sysconf("SC_PAGE_SIZE")
                       * os.sysconf("SC_PHYS_PAGES"), "python": platform.python_version()},
           "date": time.strftime("%Y-%m-%d"), "raw_lookback_probe": probe}
    print(f"{probe['data']}: {probe['variables']} variables, D = {probe['features']} features, "
          f"P = {probe['outputs']} outputs, horizons {probe['horizons']}")
    print(f"raw-lookback probe peak RSS {probe['peak_rss_bytes'] / GB:.2f} GB (process, "
          f"{probe['rss_before_probe_bytes'] / GB:.2f} GB before the probe); estimate "
          f"{probe['estimate_bytes'] / GB:.2f} GB; {probe['probe_seconds']} s")
    print(f"former design: 13 coefficient matrices alone "
          f"{probe['former_13_models_coef_bytes'] / GB:.1f} GB")
    if args.evaluate:
        out["evaluate"] = run_evaluate(args.data_dir)
        ev = out["evaluate"]
        rss = "n/a" if ev["peak_rss_bytes"] is None else f"{ev['peak_rss_bytes'] / GB:.2f} GB"
        print(f"ctsnas evaluate (smoke, H=12): exit {ev['exit_code']}, peak RSS {rss}, "
              f"{ev['seconds']} s")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
