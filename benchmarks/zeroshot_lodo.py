"""Leave-one-dataset-out zero-shot check: for every source dataset of the seed suite, the
comparator trained WITHOUT that dataset (``ctsnas comparator evaluate --holdout-weights DIR``
writes them; missing ones are trained here from ``--records``, same seed, same weights)
ranks 20,000 candidates for the dataset's first suite slice at each of its horizons, the top 3
are trained through the Ray runner, and the pick (best validation MSE) is evaluated once on the
test split next to the ``ts2vec`` preset trained at the same profile. Prints the table of
(dataset, horizon) cells and the share where the pick wins; writes it as JSON.

    python benchmarks/zeroshot_lodo.py --holdout-weights runs/lodo-w50 \\
        [--data-dir ../shared/datasets] [--profile screen] [--workers 2] [--out runs/lodo.json]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from nas.zeroshot.comparators import TRAIN_DEFAULTS, fit_tahc, save_comparator
from nas.zeroshot.features import load_features
from nas.zeroshot.query import query
from nas.zeroshot.seeds import read_records
from seeds.suite import SLICES, load_slice, slice_id

ROOT = Path(__file__).resolve().parents[1]


def first_slices() -> list:
    """The first suite slice of every source dataset."""
    seen, out = set(), []
    for sl in SLICES:
        if sl["dataset"] not in seen:
            seen.add(sl["dataset"])
            out.append(sl)
    return out


def holdout_weights(dataset: str, args) -> Path:
    """The comparator trained without ``dataset`` (trained and saved when missing)."""
    path = Path(args.holdout_weights) / f"holdout-{dataset}"
    if not (path / "tahc.pt").is_file():
        records = [r for r in read_records(args.records) if r["dataset"] != dataset]
        model, norm = fit_tahc(records, load_features(records, args.data_dir))
        save_comparator(model, norm, records, path, 0.0, dict(TRAIN_DEFAULTS))
    return path


def run_cell(sl: dict, horizon: int, args) -> dict:
    task = load_slice(sl, args.data_dir)
    config = {"horizon": horizon, "samples": args.samples, "top": 3, "train_top": 3,
              "compare_ts2vec": True, "profile": args.profile, "workers": args.workers,
              "weights": str(holdout_weights(sl["dataset"], args)),
              "trial_timeout": 600.0, "anchor_share": args.anchor_share}
    result = query(config, Path(args.run_root) / f"{slice_id(sl)}-h{horizon}", task=task)
    best, base = result["train"].get("best"), result["train"]["ts2vec"]
    pick = best["test"][str(horizon)]["mse"] if best and "test" in best else float("inf")
    ref = base["test"][str(horizon)]["mse"]
    return {"dataset": sl["dataset"], "slice_id": slice_id(sl), "horizon": horizon,
            "pick_test_mse": pick, "ts2vec_test_mse": ref, "pick_wins": pick < ref,
            "pick_hash": best["spec_hash"] if best else None,
            "rank_seconds": result["total_seconds"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--holdout-weights", required=True)
    parser.add_argument("--records", default=str(ROOT / "seeds" / "records.jsonl"))
    parser.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "datasets"))
    parser.add_argument("--profile", default="screen")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--samples", type=int, default=20000)
    parser.add_argument("--anchor-share", type=float, default=0.0,
                        help="share of candidates drawn around the ts2vec preset")
    parser.add_argument("--run-root", default="runs/lodo")
    parser.add_argument("--out", default="runs/lodo.json")
    args = parser.parse_args()
    out = Path(args.out)
    cells = json.loads(out.read_text()) if out.is_file() else []
    done = {(c["slice_id"], c["horizon"]) for c in cells}
    for sl in first_slices():
        for h in sl["horizons"]:
            if (slice_id(sl), h) in done:
                continue
            cells.append(run_cell(sl, h, args))
            out.write_text(json.dumps(cells, indent=2))
            c = cells[-1]
            print(f"{c['dataset']:<14} H={h:<4} pick {c['pick_test_mse']:.4f}  ts2vec "
                  f"{c['ts2vec_test_mse']:.4f}  {'win' if c['pick_wins'] else 'loss'}  "
                  f"(ranked in {c['rank_seconds']:.1f} s)", flush=True)
    wins = sum(c["pick_wins"] for c in cells)
    print(f"zero-shot pick beats ts2vec on {wins}/{len(cells)} cells "
          f"({100 * wins / len(cells):.0f}%)")


if __name__ == "__main__":
    main()
