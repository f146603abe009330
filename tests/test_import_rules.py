"""The import rules of DEVELOPERS.md, checked by import-linter (`[tool.importlinter]` in
pyproject.toml): the project keeps them, and a deliberately wrong import breaks them."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("search_spaces", "downstream", "seeds", "comparator", "nas")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint(cwd: Path, pythonpath: Path) -> subprocess.CompletedProcess:
    if not LINT_IMPORTS.is_file():
        pytest.fail(f"lint-imports not found at {LINT_IMPORTS}; install the '.[test]' extra")
    env = {**os.environ, "PYTHONPATH": str(pythonpath)}
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def test_project_keeps_every_import_contract():
    result = _lint(ROOT, ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def _copy_project(dest: Path) -> None:
    for package in PACKAGES:
        shutil.copytree(ROOT / package, dest / package,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pt", "*.jsonl"))
    shutil.copy(ROOT / "pyproject.toml", dest / "pyproject.toml")


def test_a_wrong_import_breaks_the_contracts(tmp_path):
    _copy_project(tmp_path)
    assert _lint(tmp_path, tmp_path).returncode == 0  # the copy alone is clean
    module = tmp_path / "downstream" / "splits.py"
    module.write_text(module.read_text() + "\nimport nas  # noqa: E402,F401\n")
    result = _lint(tmp_path, tmp_path)
    assert result.returncode != 0
    assert "downstream imports nothing of ours BROKEN" in result.stdout
    assert "nothing imports nas BROKEN" in result.stdout
    assert "downstream.splits -> nas" in result.stdout


@pytest.mark.parametrize("module,line,contract", [
    ("comparator/graph.py", "import ray", "only nas imports ray"),
    ("search_spaces/cost.py", "from .learner import model", "imports no torch"),
    ("search_spaces/space.py", "from . import spec", "no import cycles between sibling modules"),
    ("nas/engine/store.py", "from nas.cli import common", "nas: cli above service above zeroshot above engine"),
])
def test_other_wrong_imports_break_their_contract(tmp_path, module, line, contract):
    _copy_project(tmp_path)
    path = tmp_path / module
    path.write_text(path.read_text() + f"\n{line}  # noqa: E402,F401\n")
    result = _lint(tmp_path, tmp_path)
    assert result.returncode != 0
    broken = [row for row in result.stdout.splitlines() if row.endswith(" BROKEN")]
    assert any(contract in row for row in broken), result.stdout
