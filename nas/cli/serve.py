"""``ctsnas serve``: the HTTP API and web page (:mod:`nas.service`) under uvicorn."""
from __future__ import annotations

import os
from pathlib import Path

from .common import UsageError, flag_error

TOKEN_ENV = "CTSNAS_TOKEN"
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def check_serve_args(args):
    """The service's settings from the options, refusing before anything starts.

    Raises:
        UsageError: a bind beyond loopback without a token, a bad port, a missing
            ``--data-dir``, a bad ``--max-upload`` or job count.
    """
    from ..service.app import Settings

    token = args.token or os.environ.get(TOKEN_ENV) or None
    if args.host not in LOCAL_HOSTS and not token:
        raise UsageError(f"--host: got {args.host!r} without a token; allowed: 127.0.0.1 "
                         f"(the default), or --token / {TOKEN_ENV} for any other bind")
    if not 0 < args.port < 65536:
        raise UsageError(f"--port: got {args.port}; allowed: 1-65535")
    if args.data_dir is not None and not Path(args.data_dir).is_dir():
        raise UsageError(f"--data-dir: {args.data_dir} is not a folder; allowed: the folder "
                         "the service may read datasets from")
    from downstream.datasets import resolve_data_dir

    data_dir = resolve_data_dir(args.data_dir)  # default: as the other commands look
    for flag, value in (("--max-jobs", args.max_jobs), ("--query-workers", args.query_workers)):
        if value < 1:
            raise UsageError(f"{flag}: got {value}; allowed: an int >= 1")
    return Settings(runs_root=Path(args.runs_root).resolve(),
                    data_dir=data_dir.resolve() if data_dir else None,
                    address=args.address, token=token,
                    max_upload=_size(args.max_upload),
                    max_jobs=args.max_jobs, query_workers=args.query_workers)


def _size(text: str) -> int:
    from ..engine.memory import parse_bytes

    try:
        return parse_bytes(text, "max_upload")
    except ValueError as exc:
        raise flag_error(exc, {"max_upload": "--max-upload"}) from None


def cmd_serve(args) -> int:
    import uvicorn

    from ..service.app import create_app

    settings = check_serve_args(args)
    try:
        settings.runs_root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--runs-root: cannot create {settings.runs_root} "
                         f"({exc.strerror}); allowed: a folder you can write") from None
    app = create_app(settings)
    print(f"ctsnas serve: http://{args.host}:{args.port}/ (runs in {settings.runs_root})",
          flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)
    return 0


def add_parsers(sub) -> None:
    p = sub.add_parser("serve", help="HTTP API and web page: submit and watch searches, query "
                                     "the comparator")
    p.add_argument("--host", default="127.0.0.1",
                   help="bind address (default 127.0.0.1; any other needs a token)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--address", default=None,
                   help="Ray cluster of the jobs: auto or host:port (default: a local Ray "
                        "per job)")
    p.add_argument("--runs-root", default="runs/service",
                   help="folder of the jobs' run directories (default runs/service)")
    p.add_argument("--data-dir", default=None,
                   help="the only folder datasets are read from (default: $CTSNAS_DATA_DIR, "
                        "./datasets or ../shared/datasets, as the other commands)")
    p.add_argument("--token", default=None,
                   help=f"required on every request (default: ${TOKEN_ENV})")
    p.add_argument("--max-upload", default="20M", help="upload size limit (default 20M)")
    p.add_argument("--max-jobs", type=int, default=1,
                   help="jobs running at once; the others wait queued (default 1)")
    p.add_argument("--query-workers", type=int, default=2,
                   help="queries ranked at once; the others wait (default 2)")
    p.add_argument("--log-level", default="warning")
    p.set_defaults(func=cmd_serve)
