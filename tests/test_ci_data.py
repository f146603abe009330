"""Under CI (environment variable CI set) a missing datasets folder fails the test run; elsewhere
the tests that need it skip. Checked with the real tests/conftest.py in a pytest subprocess."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

CONFTEST = Path(__file__).resolve().with_name("conftest.py")
TINY_TEST = "def test_needs_data(data_dir):\n    assert data_dir.is_dir()\n"


def _run_pytest(tmp_path: Path, data_dir: Path, ci: str | None) -> subprocess.CompletedProcess:
    tests = tmp_path / "tests"
    tests.mkdir(exist_ok=True)
    shutil.copy(CONFTEST, tests / "conftest.py")
    (tests / "test_tiny.py").write_text(TINY_TEST)
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "PYTEST_ADDOPTS")}
    env["CTSNAS_DATA_DIR"] = str(data_dir)
    if ci is not None:
        env["CI"] = ci
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "--rootdir", str(tmp_path), "tests/test_tiny.py"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)


def test_missing_data_folder_fails_under_ci(tmp_path):
    missing = tmp_path / "no-such-datasets"
    result = _run_pytest(tmp_path, missing, ci="true")
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert f"datasets folder not found: {missing}" in output
    assert "passed" not in output and "skipped" not in output


def test_missing_data_folder_skips_outside_ci(tmp_path):
    for ci in (None, "false"):
        result = _run_pytest(tmp_path, tmp_path / "no-such-datasets", ci=ci)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "1 skipped" in result.stdout


def test_present_data_folder_runs_under_ci(tmp_path):
    data = tmp_path / "datasets"
    (data / "ETT-small").mkdir(parents=True)
    (data / "ETT-small" / "ETTh1.csv").write_text("date,OT\n2016-07-01 00:00:00,1.0\n")
    result = _run_pytest(tmp_path, data, ci="true")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout


def _first_command_under(readme: str, heading: str) -> str:
    section = readme.split(f"\n## {heading}\n", 1)[1]
    return section.split("```bash\n", 1)[1].split("\n```", 1)[0].strip()


def test_ci_script_runs_the_readme_install_and_test_commands():
    root = CONFTEST.parents[1]
    readme = (root / "README.md").read_text()
    ci_lines = [line.strip() for line in (root / ".ci" / "run").read_text().splitlines()]
    for heading in ("Install", "Run the tests"):
        command = _first_command_under(readme, heading)
        assert "\n" not in command, f"README {heading}: one command expected, got {command!r}"
        assert command in ci_lines, f".ci/run lacks the README's {heading} command {command!r}"
