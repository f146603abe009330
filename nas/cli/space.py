"""``ctsnas space`` and ``ctsnas datasets``: inspect the search space and the data."""
from __future__ import annotations

import json

import numpy as np

import search_spaces as ss

from .common import UsageError, read_specs


def cmd_space_sample(args) -> int:
    if args.n < 1:
        raise UsageError(f"--n: got {args.n}; allowed: an int >= 1")
    rng = np.random.default_rng(args.seed)
    for _ in range(args.n):
        print(json.dumps(ss.sample(rng, spatial=not args.no_spatial)))
    return 0


def cmd_space_validate(args) -> int:
    specs = read_specs(args.file)
    for i, spec in enumerate(specs):
        try:
            ss.validate(spec)
        except ValueError as exc:
            where = f" (spec {i + 1} of {len(specs)})" if len(specs) > 1 else ""
            raise UsageError(f"{args.file}{where}: {exc}") from None
    for spec in specs:
        print(f"ok {ss.spec_hash(spec)}")
    return 0


def cmd_space_show(args) -> int:
    try:
        print(json.dumps(ss.canonical(ss.preset(args.name)), indent=2))
    except ValueError as exc:
        raise UsageError(f"NAME: {exc}") from None
    return 0


def cmd_space_size(args) -> int:
    n = ss.space_size(spatial=not args.no_spatial)
    print(f"{n} distinct specs ({n:.3e})")
    return 0


def cmd_datasets(args) -> int:
    from downstream.datasets import candidate_dirs, list_datasets

    looked = ", ".join(str(d.resolve()) for d in candidate_dirs(args.data_dir))
    print(f"data directory (--data-dir, else $CTSNAS_DATA_DIR, else ./datasets, "
          f"../shared/datasets): looked in {looked}")
    for row in list_datasets(args.data_dir):
        mark = "yes" if row["available"] else "missing"
        print(f"  {row['name']:<14} {mark:<8} {row['path']}")
    return 0



def add_parsers(sub) -> None:
    """Add the space and datasets sub-commands to ``sub``."""
    space = sub.add_parser("space", help="inspect the search space").add_subparsers(
        dest="space_command", required=True)
    p = space.add_parser("sample", help="print N random specs as JSON lines")
    p.add_argument("--n", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-spatial", action="store_true", help="only temporal encoder ops")
    p.set_defaults(func=cmd_space_sample)
    p = space.add_parser("validate", help="validate a spec file (JSON or JSON lines)")
    p.add_argument("file")
    p.set_defaults(func=cmd_space_validate)
    p = space.add_parser("show", help=f"print a preset spec ({', '.join(ss.PRESETS)})")
    p.add_argument("name")
    p.set_defaults(func=cmd_space_show)
    p = space.add_parser("size", help="number of distinct specs in the space")
    p.add_argument("--no-spatial", action="store_true")
    p.set_defaults(func=cmd_space_size)

    p = sub.add_parser("datasets", help="list the datasets and where they were looked for")
    p.add_argument("--data-dir", default=None)
    p.set_defaults(func=cmd_datasets)
