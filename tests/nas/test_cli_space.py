"""`ctsnas space ...`: sample, validate, show, size, with exit codes and messages."""
from __future__ import annotations

import json
import subprocess
import sys

import search_spaces as ss
from nas.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_sample_is_json_lines_deterministic_and_valid(capsys):
    code, out, _ = run(capsys, "space", "sample", "--n", "5", "--seed", "7")
    assert code == 0
    specs = [json.loads(line) for line in out.splitlines()]
    assert len(specs) == 5 and len({ss.spec_hash(s) for s in specs}) == 5
    assert run(capsys, "space", "sample", "--n", "5", "--seed", "7")[1] == out
    assert run(capsys, "space", "sample", "--n", "5", "--seed", "8")[1] != out


def test_validate_ok_and_bad(tmp_path, capsys):
    good = tmp_path / "good.json"
    good.write_text(json.dumps(ss.preset("ts2vec")))
    code, out, _ = run(capsys, "space", "validate", str(good))
    assert code == 0 and out.strip() == f"ok {ss.spec_hash(ss.preset('ts2vec'))}"
    bad = ss.preset("ts2vec")
    bad["LossCell"]["temperature"] = 0.3
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bad))
    code, out, err = run(capsys, "space", "validate", str(path))
    assert code == 2 and "LossCell.temperature: got 0.3; allowed: [0.05" in err


def test_validate_json_lines_names_the_bad_line(tmp_path, capsys):
    bad = ss.preset("ts2vec")
    bad["Encoder"]["cell"] = [[1, "identity"]]
    path = tmp_path / "specs.jsonl"
    path.write_text(json.dumps(ss.sample(1)) + "\n" + json.dumps(bad) + "\n")
    code, _, err = run(capsys, "space", "validate", str(path))
    assert code == 2 and "spec 2 of 2" in err and "Encoder.cell[0][0]" in err


def test_validate_unreadable_or_not_json(tmp_path, capsys):
    code, _, err = run(capsys, "space", "validate", str(tmp_path / "missing.json"))
    assert code == 2 and "cannot read" in err
    path = tmp_path / "junk.json"
    path.write_text("{not json\n")
    code, _, err = run(capsys, "space", "validate", str(path))
    assert code == 2 and "not a JSON spec" in err


def test_show_and_size(capsys):
    code, out, _ = run(capsys, "space", "show", "ts2vec")
    assert code == 0 and json.loads(out) == ss.canonical(ss.preset("ts2vec"))
    code, _, err = run(capsys, "space", "show", "simclr")
    assert code == 2 and "allowed: ['ts2vec']" in err
    code, out, _ = run(capsys, "space", "size")
    assert code == 0 and int(out.split()[0]) == ss.space_size()


def test_console_entry_point_runs_as_a_process():
    proc = subprocess.run([sys.executable, "-m", "nas.cli", "space", "show", "ts2vec"],
                          capture_output=True, text=True, check=True)
    assert json.loads(proc.stdout)["Encoder"]["repr_dim"] == 320
