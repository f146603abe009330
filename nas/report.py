"""Plain-text tables of evaluation results."""
from __future__ import annotations


def _rows(label: str, probe: dict, split: str) -> list:
    lines = []
    for h, r in probe["horizons"].items():
        m = r[split]
        lines.append(f"{label:<16} {h:>5} {m['mse']:>9.4f} {m['mae']:>9.4f} "
                     f"{m['mse_raw']:>11.4g} {m['mae_raw']:>11.4g} {r['alpha']:>7g}")
    return lines


def format_evaluation(result: dict) -> str:
    """The validation and test tables of ``nas.evaluate.evaluate``, with reference rows and
    timings (seconds)."""
    model = result["model"]
    train = model["train"]
    head = (f"{result['data']} ({'univariate' if result['univariate'] else 'multivariate'}, "
            f"targets {','.join(result['targets'][:5])}{'...' if len(result['targets']) > 5 else ''}"
            f", {result['n_inputs']} input channels), arch {result['arch']} "
            f"[{result['spec_hash']}], profile {result['profile']}, seed {result['seed']}")
    lines = [head, f"training: {train['status']}, {train['n_iters']} iterations, "
             f"{train['seconds']:.1f} s, {train['n_params']} parameters, "
             f"final loss {train['final_loss']}"]
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
