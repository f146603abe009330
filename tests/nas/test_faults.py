"""Faults and bad input at the command line (issue 14): each case asserts the exit code, a
one-line message naming what was wrong, and that nothing in the run directory was created,
lost or changed. Small synthetic data; no training (refusals come before any work)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nas.cli.main import main
from nas.engine.lock import RunLock
from nas.engine.store import RunStore


def snapshot(folder: Path) -> dict:
    """Every file under ``folder`` -> its bytes (the run directory's full content)."""
    return {str(p.relative_to(folder)): p.read_bytes()
            for p in sorted(Path(folder).rglob("*")) if p.is_file()}


def run_cli(capsys, *argv) -> tuple:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_error(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("ctsnas: error: "), err
    assert "Traceback" not in err
    return lines[0]


def write_csv(path: Path, dates, rows: int = 400) -> Path:
    rng = np.random.default_rng(0)
    t = np.arange(rows)
    pd.DataFrame({"date": dates, "a": np.sin(t / 8) + 0.1 * rng.standard_normal(rows),
                  "OT": np.cos(t / 8) + 0.1 * rng.standard_normal(rows)}).to_csv(path, index=False)
    return path


@pytest.fixture
def hourly(tmp_path) -> Path:
    dates = pd.date_range("2020-01-01", periods=400, freq="h").strftime("%Y-%m-%d %H:%M")
    return write_csv(tmp_path / "hourly.csv", list(dates))


@pytest.fixture
def run(tmp_path) -> Path:
    """An intact run directory with two trials."""
    store = RunStore(tmp_path / "run")
    store.set_config({"data": "co2", "trials": 2, "horizons": [4]})
    for i, status in enumerate(("ok", "failed")):
        store.add_trial({"trial": i, "spec_hash": f"h{i}", "spec": {"i": i}, "seed": 0,
                         "status": status, "val_mse": 0.5 if status == "ok" else None,
                         "metrics": {"4": {"val": {"mse": 0.5, "mae": 0.4}}} if i == 0 else None})
    store.close()
    return tmp_path / "run"


# 1. memory: refused before any work, naming the estimate and the limit
def test_evaluate_over_max_memory_is_refused_before_training(capsys, hourly, tmp_path):
    before = snapshot(tmp_path)
    code, out, err = run_cli(capsys, "evaluate", "--data", hourly, "--profile", "smoke",
                             "--horizons", "4", "--max-memory", "100M")
    line = one_error(err)
    assert code == 2 and out == ""
    assert "--max-memory: got 0.10 GiB, below" in line and "estimated peak memory" in line
    assert snapshot(tmp_path) == before


def test_train_over_max_memory_writes_no_encoder(capsys, hourly, tmp_path):
    code, _, err = run_cli(capsys, "train", "--data", hourly, "--profile", "smoke",
                           "--horizons", "4", "--max-memory", "0.2G", "--out",
                           tmp_path / "enc.pt")
    assert code == 2 and "--max-memory" in one_error(err)
    assert not (tmp_path / "enc.pt").exists()


@pytest.mark.parametrize("size", ["-1G", "nan", "8X", "0"])
def test_bad_max_memory_is_named(capsys, hourly, size):
    code, _, err = run_cli(capsys, "evaluate", "--data", hourly, f"--max-memory={size}")
    assert code == 2 and f"--max-memory: got {size!r}" in one_error(err)


# 2. data: refused unless fixed on purpose (the memory limit stops the run right after loading)
@pytest.mark.parametrize("fix,dates,words", [
    ("--sort-dates", "unsorted", "--sort-dates"),
    ("--dedupe", "repeated", "--dedupe"),
    ("--date-format=%d/%m/%Y %H:%M", "dayfirst", "--date-format"),
])
def test_bad_dates_are_refused_and_the_flag_fixes_them(capsys, tmp_path, fix, dates, words):
    hours = pd.date_range("2020-01-01", periods=400, freq="h")
    if dates == "unsorted":
        text = list(hours.strftime("%Y-%m-%d %H:%M"))
        text[10], text[11] = text[11], text[10]
    elif dates == "repeated":
        text = list(hours.strftime("%Y-%m-%d %H:%M"))
        text[11] = text[10]
    else:
        text = list(pd.date_range("2020-01-01", periods=400, freq="30min").strftime(
            "%d/%m/%Y %H:%M"))  # no day above 12: both readings fit
    csv = write_csv(tmp_path / "bad.csv", text)
    base = ["evaluate", "--data", csv, "--horizons", "4", "--profile", "smoke"]
    code, _, err = run_cli(capsys, *base)
    assert code == 2 and words in one_error(err)
    code, _, err = run_cli(capsys, *base, fix, "--max-memory", "1M")
    assert code == 2 and "--max-memory" in one_error(err)  # loaded, then stopped by memory


# 3. cluster address: fails fast and writes nothing; the retry without it starts its own Ray
def test_unreachable_address_fails_fast_and_writes_nothing(capsys, hourly, tmp_path):
    import time

    start = time.monotonic()
    code, _, err = run_cli(capsys, "search", "--data", hourly, "--trials", "1", "--address",
                           "127.0.0.1:1", "--horizons", "4", "--run-dir", tmp_path / "run",
                           "--quiet")
    line = one_error(err)
    assert code == 2 and time.monotonic() - start < 30
    assert "--address: nothing answers at 127.0.0.1:1" in line and "local Ray" in line
    assert not (tmp_path / "run").exists()


# 5. one writer per run directory (a second search refused: tests/nas/test_cluster_cli.py)
def test_the_lock_names_its_holder_and_is_released(run):
    before = snapshot(run)
    with RunLock(run):
        with pytest.raises(ValueError, match=f"in use by another search \\(PID {os.getpid()}\\)"):
            with RunLock(run, wait=0.2):
                pass
    with RunLock(run, wait=0):
        pass
    assert {k: v for k, v in snapshot(run).items() if "lock" not in k} == before


# 6. read-only commands create nothing
def test_runs_show_on_a_mistyped_path_creates_nothing(capsys, tmp_path):
    code, _, err = run_cli(capsys, "runs", "show", tmp_path / "typo" / "run")
    assert code == 2 and "holds no run" in one_error(err)
    assert list(tmp_path.iterdir()) == []


def test_runs_show_and_export_leave_the_run_unchanged(capsys, run, tmp_path):
    before = snapshot(run)
    code, out, _ = run_cli(capsys, "runs", "show", run)
    assert code == 0 and "0.5" in out
    assert snapshot(run) == before
    target = tmp_path / "new" / "folder" / "trials.csv"
    code, out, _ = run_cli(capsys, "runs", "export", run, "--out", target)
    assert code == 0 and out.strip() == str(target)
    assert len(pd.read_csv(target)) == 2 and snapshot(run) == before


def test_runs_list_reports_a_corrupt_run_and_goes_on(capsys, run, tmp_path):
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "run.sqlite").write_bytes(b"not sqlite" * 100)
    before = snapshot(tmp_path)
    code, out, err = run_cli(capsys, "runs", "list", "--root", tmp_path)
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert "broken  unreadable" in lines[0] and "not a readable ctsnas run store" in lines[0]
    assert lines[1].endswith("trials 2  failed 1  best 0.5000")
    assert snapshot(tmp_path) == before


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_an_intact_run_in_a_read_only_directory_is_shown(capsys, run):
    os.chmod(run, 0o555)
    try:
        code, out, _ = run_cli(capsys, "runs", "show", run)
    finally:
        os.chmod(run, 0o755)
    assert code == 0 and "0.5" in out


def test_a_cut_off_json_file_is_named(capsys, run):
    (run / "references.json").write_text('{"raw_lookback": {"val_')
    code, _, err = run_cli(capsys, "runs", "show", run)
    assert code == 2 and "references.json" in one_error(err)


# 8. errors are one line
def test_deeply_nested_and_huge_integer_specs_are_one_line(capsys, tmp_path, hourly):
    deep, huge = tmp_path / "deep.json", tmp_path / "huge.json"
    deep.write_text("[" * 100_000)
    huge.write_text('{"Train": ' + "9" * 5001 + "}")
    for path in (deep, huge):
        code, _, err = run_cli(capsys, "evaluate", "--data", hourly, "--arch", path)
        assert code == 2 and f"--arch: cannot read {path}" in one_error(err)
        code, _, err = run_cli(capsys, "search", "--data", hourly, "--spec", path,
                               "--run-dir", tmp_path / "run")
        assert code == 2 and str(path) in one_error(err)
    assert not (tmp_path / "run").exists()


def test_a_truncated_encoder_file_is_one_line(capsys, tmp_path, hourly):
    enc = tmp_path / "enc.pt"
    enc.write_bytes(b"PK\x03\x04" + b"\x00" * 50)
    code, _, err = run_cli(capsys, "evaluate", "--data", hourly, "--encoder", enc)
    assert code == 2 and str(enc) in one_error(err)


def test_a_missing_tahc_json_is_one_line(capsys, tmp_path, hourly):
    from nas.zeroshot.comparators import WEIGHTS_DIR

    weights = tmp_path / "weights"
    weights.mkdir()
    (weights / "tahc.pt").write_bytes((Path(WEIGHTS_DIR) / "tahc.pt").read_bytes())
    code, _, err = run_cli(capsys, "query", "--data", hourly, "--horizon", "4", "--weights",
                           weights)
    assert code == 2 and "no tahc.json" in one_error(err) and "--weights" in one_error(err)


def test_a_parent_that_cannot_be_written_is_one_line(capsys, tmp_path, hourly):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, _, err = run_cli(capsys, "train", "--data", hourly, "--out", blocker / "enc.pt")
    assert code == 2 and "--out" in one_error(err)
    code, _, err = run_cli(capsys, "runs", "export", tmp_path, "--out", blocker / "t.csv")
    assert code == 2


@pytest.mark.parametrize("value", ["nan", "inf", "-3"])
def test_non_finite_trial_timeout_is_refused(capsys, value):
    with pytest.raises(SystemExit) as exc:
        main(["search", "--data", "co2", "--trial-timeout", value])
    assert exc.value.code == 2
    assert "--trial-timeout: got" in capsys.readouterr().err


def test_debug_shows_the_traceback(tmp_path):
    with pytest.raises(ValueError):
        main(["--debug", "runs", "show", str(tmp_path / "nothing")])


@pytest.mark.parametrize("argv,message", [
    (["search", "--trial-timeout", "nan"], "--trial-timeout: got 'nan'"),
    (["evaluate", "--data", "co2", "--bogus"], "unrecognized arguments: --bogus"),
    ([], "required: command"),
])
def test_argument_parser_errors_are_one_line(capsys, argv, message):
    with pytest.raises(SystemExit) as stop:
        main(argv)
    err = capsys.readouterr().err
    assert stop.value.code == 2 and message in err
    assert err.count("\n") == 1 and "usage:" not in err
