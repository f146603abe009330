"""Plain-text tables of evaluation results."""
from __future__ import annotations

import json

import search_spaces as ss


def _rows(label: str, probe: dict, split: str) -> list:
    lines = []
    for h, r in probe["horizons"].items():
        m = r[split]
        lines.append(f"{label:<16} {h:>5} {m['mse']:>9.4f} {m['mae']:>9.4f} "
                     f"{m['mse_raw']:>11.4g} {m['mae_raw']:>11.4g} {r['alpha']:>7g}")
    return lines


def _task_line(result: dict) -> str:
    targets = result["targets"]
    return (f"{result['data']} ({'univariate' if result['univariate'] else 'multivariate'}, "
            f"targets {','.join(targets[:5])}{'...' if len(targets) > 5 else ''}, "
            f"{result['n_inputs']} input channels)")


def _profile_name(profile) -> str:
    """A training profile as stored in a record (the resolved dict) -> its name when it is a
    named profile, else the dict as JSON."""
    from search_spaces.learner import PROFILES

    if isinstance(profile, str) or profile is None:
        return str(profile)
    names = [name for name, value in PROFILES.items() if value == profile]
    return names[0] if names else json.dumps(profile)


def _training_line(train: dict | None) -> str:
    if not train:
        return "training: no record stored with the encoder"
    note = (" -- DEGENERATE: the loss is constant, nothing was learned"
            if train.get("degenerate") else "")
    return (f"training: {train['status']}, {train['n_iters']} iterations, "
            f"{train['seconds']:.1f} s, {train['n_params']} parameters, "
            f"final loss {train['final_loss']}{note}")


def format_evaluation(result: dict) -> str:
    """The validation and test tables of ``nas.engine.evaluate.evaluate`` (or
    ``evaluate_encoder``), with reference rows and timings (seconds)."""
    model = result["model"]
    if "encoder" in result:
        what = (f"encoder {result['encoder']} [{result['spec_hash']}] (trained with profile "
                f"{_profile_name(result['profile'])}, seed {result['seed']}; not retrained)")
    else:
        what = (f"arch {result['arch']} [{result['spec_hash']}], profile {result['profile']}, "
                f"seed {result['seed']}")
    what += f", probe features {result.get('features', 'repr')}"
    lines = [f"{_task_line(result)}, {what}", _training_line(model["train"])]
    if result.get("input_scaling_matches") is False:
        lines.append("note: this task's input scaling differs from the encoder's training data")
    rows = [("model", model)] if model["status"] == "ok" else []
    rows += list(result.get("references", {}).items())
    for split in ("val", "test"):
        lines += ["", f"{split}: {'row':<11} {'H':>5} {'MSE':>9} {'MAE':>9} {'MSE raw':>11} "
                      f"{'MAE raw':>11} {'alpha':>7}"]
        for label, probe in rows:
            lines += _rows(label, probe, split)
    if model["status"] == "ok":
        lines += ["", f"timings: encode {model['encode_seconds']:.1f} s, ridge "
                      f"{model['ridge_seconds']:.1f} s, total {result['seconds']:.1f} s"]
    return "\n".join(lines)


def format_training(result: dict) -> str:
    """The summary of ``ctsnas train`` (``nas.engine.evaluate.train_encoder``): the training
    record, where the encoder was saved and its validation probe per horizon."""
    lines = [f"{_task_line(result)}, arch {result['arch']} [{result['spec_hash']}], profile "
             f"{result['profile']}, seed {result['seed']}", _training_line(result["train"]),
             f"encoder saved to {result['out']}"]
    if result["status"] == "ok":
        lines += ["", f"val: {'row':<11} {'H':>5} {'MSE':>9} {'MAE':>9} {'MSE raw':>11} "
                      f"{'MAE raw':>11} {'alpha':>7}"]
        lines += _rows("model", result, "val")
        lines += ["", f"timings: encode {result['encode_seconds']:.1f} s, ridge "
                      f"{result['ridge_seconds']:.1f} s, total {result['seconds']:.1f} s"]
    return "\n".join(lines)


def format_leaderboard(summary: dict, top: int = 10) -> str:
    """Leaderboard (rank, hash, validation MSE per horizon, parameters, seconds, training gain
    where computed) with the reference rows, then the best spec's test metrics next to the
    reference rows' (raw lookback, the best spec at random initialisation)."""
    config = summary["config"]
    horizons = [str(h) for h in config["horizons"]]
    asha = config.get("fidelity", "none") == "asha"
    iters = (lambda r: f" {config['rungs'][r.get('rung') or 0]:>5}") if asha else (lambda r: "")
    head = (f"{'rank':>4} {'trial':>5} {'hash':<16}" + (f" {'iters':>5}" if asha else "") + " "
            + " ".join(f"{'H=' + h:>9}" for h in horizons)
            + f" {'mean':>9} {'params':>9} {'seconds':>8} {'gain':>8} status")
    preset = ss.spec_hash(ss.preset("ts2vec"))
    gains = summary.get("training_gain") or {}
    objective = {
        "probe": f"probe features {config.get('features', 'repr')}",
        "fsnet": "objective: FSNet cumulative online MSE (warm-up on train, validation stream)",
        "titans": "objective: Titans mode-A validation MSE over the frozen encoder "
                  "(lookback 96)"}[config.get("downstream", "probe")]
    lines = [f"{summary['n_trials']} trials, {summary['n_failed']} failed, timed out "
             f"or degenerate; {objective}; run directory {summary['run_dir']}",
             "", "validation MSE (gain: random-init minus trained, same seed)", head]
    board = summary["leaderboard"]
    shown = board[:top] + [r for r in board[top:] if r["spec_hash"] == preset]
    for r in shown:
        per_h = [r["metrics"][h]["val"]["mse"] if r["metrics"] else None for h in horizons]
        cells = " ".join(f"{v:>9.4f}" if v is not None else f"{'-':>9}" for v in per_h)
        mean = f"{r['val_mse']:>9.4f}" if r["val_mse"] is not None else f"{'-':>9}"
        label = "ts2vec" if r["spec_hash"] == preset else ""
        gain = gains.get(str(r["trial"]), {}).get("gain")
        gain = f"{gain:>8.4f}" if gain is not None else f"{'-':>8}"
        lines.append(f"{r['rank'] or '-':>4} {r['trial']:>5} {r['spec_hash']:<16}{iters(r)} "
                     f"{cells} {mean} "
                     f"{r['n_params'] or '-':>9} {r['seconds'] or 0:>8.1f} {gain} {r['status']} "
                     f"{label}")
    for name, ref in summary["references"].items():
        cells = " ".join(f"{ref['horizons'][h]['val']['mse']:>9.4f}" for h in horizons)
        lines.append(f"{'ref':>4} {'-':>5} {name:<16}{' ' * 6 if asha else ''} {cells} "
                     f"{ref['val_mse']:>9.4f}")
    if "best_test" in summary:
        trained = (f", {config['rungs'][board[0].get('rung') or 0]} training iterations"
                   if asha else "")
        lines += ["", f"best spec (trial {board[0]['trial']}, {board[0]['spec_hash']}{trained}) "
                      "on the test split, computed once:"]
        for h, m in sorted(summary["best_test"].items(), key=lambda item: int(item[0])):
            refs = "".join(f"; {name} MSE {r['mse']:.4f}"
                           for name, r in (m.get("references") or {}).items())
            raw = (f"  (raw MSE {m['test']['mse_raw']:.4g})" if "mse_raw" in m["test"] else "")
            lines.append(f"  H={h}: MSE {m['test']['mse']:.4f}  MAE {m['test']['mae']:.4f}"
                         f"{raw}{refs}")
    if "best_encoder" in summary:
        lines.append(f"  its encoder: {summary['best_encoder']} (ctsnas evaluate --encoder)")
    return "\n".join(lines)
