"""The file format of a saved :class:`~search_spaces.learner.ContrastiveLearner`.

One ``torch.save`` file (read back with ``weights_only=True``: plain containers and tensors,
no pickled code) holding a dict: ``format`` (:data:`FORMAT`), ``format_version``
(:data:`FORMAT_VERSION`), ``ctsnas_version``, ``spec``, ``n_features``, ``seed``, ``scaling``
(per-channel input scaling or None), ``record`` (the training record or None),
``state_dict`` (the network weights) and ``weights_sha256`` (a digest of the weights, so a
corrupted file is refused rather than silently encoding wrong).
"""
from __future__ import annotations

import hashlib
import io
import os
import uuid
from importlib import metadata
from pathlib import Path

import torch

FORMAT = "ctsnas.ContrastiveLearner"
FORMAT_VERSION = 1
ALLOWED = f"a {FORMAT} file (format version {FORMAT_VERSION}) written by ContrastiveLearner.save"
KEYS = ("format", "format_version", "ctsnas_version", "spec", "n_features", "seed", "scaling",
        "record", "state_dict", "weights_sha256")


def ctsnas_version() -> str:
    """The installed ctsnas version ("unknown" when not installed as a package)."""
    try:
        return metadata.version("ctsnas")
    except metadata.PackageNotFoundError:
        return "unknown"


def weights_digest(state_dict: dict) -> str:
    """SHA-256 over the names, dtypes, shapes and bytes of the tensors of a state dict."""
    h = hashlib.sha256()
    for name in sorted(state_dict):
        t = state_dict[name].detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def to_bytes(payload: dict) -> bytes:
    """Serialise a payload dict (see the module docstring) to the bytes of a file."""
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return buffer.getvalue()


def write_atomic(data: bytes, path) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder and
    ``os.replace``: readers see the old file or the new one, never a partial one."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        with open(tmp, "xb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_payload(source, name: str) -> dict:
    """Load and check a payload from a path or bytes; ``name`` names it in errors.

    Raises:
        ValueError: a missing path, an unreadable / truncated / corrupted file, a file that is
            not a ctsnas encoder, or another format version (one line naming ``name``).
    """
    if not isinstance(source, (bytes, bytearray)):
        path = Path(source)
        if not path.is_file():
            what = "is a directory" if path.is_dir() else "does not exist"
            raise ValueError(f"path: {name} {what}; allowed: {ALLOWED}")
        source = path.read_bytes()
    try:
        payload = torch.load(io.BytesIO(source), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling/zip error means the same thing
        raise ValueError(f"path: {name} is not a readable ctsnas encoder file (truncated, "
                         f"corrupted or another kind of file: {type(exc).__name__}); "
                         f"allowed: {ALLOWED}") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f"path: {name} is not a ctsnas encoder file; allowed: {ALLOWED}")
    version = payload.get("format_version")
    if version != FORMAT_VERSION:
        raise ValueError(f"path: {name} has format version {version!r} (written by ctsnas "
                         f"{payload.get('ctsnas_version')}); allowed: format version "
                         f"{FORMAT_VERSION}")
    missing = [k for k in KEYS if k not in payload]
    if missing:
        raise ValueError(f"path: {name} lacks {missing[0]!r}; allowed: {ALLOWED}")
    if weights_digest(payload["state_dict"]) != payload["weights_sha256"]:
        raise ValueError(f"path: {name} is corrupted (the weights do not match their "
                         f"checksum); allowed: {ALLOWED}")
    return payload
