"""The contrastive learner of a spec: build, train, encode, save and load (TS2Vec-style).

Mirrors the ``TS2Vec`` object of Yue et al. (AAAI 2022; reference ``ts2vec.py``):
``ContrastiveLearner(spec, n_features).fit(series)`` then ``.encode(x)``; in addition the
learner keeps its spec, its training record and the input scaling of its training data, and
saves all of it in one file (:mod:`.storage`).
"""
from __future__ import annotations

import numpy as np
import torch

from . import storage
from .encoding import encode as _encode
from .model import build_model, count_parameters
from .trainer import check_series, resolve_profile, train
from ..validation import validate


def check_scaling(scaling, n_features: int) -> dict | None:
    """A per-channel input scaling ``{"mean": [C], "std": [C], "channels": [C] (optional)}``
    -> the same with floats (``channels`` None when not given); None stays None.

    Raises:
        ValueError: not a dict, unknown keys, lengths other than C, non-finite values or a
            std <= 0.
    """
    if scaling is None:
        return None
    allowed = f"a dict of 'mean' and 'std' (and optional 'channels'), {n_features} values each"
    if not isinstance(scaling, dict) or not {"mean", "std"} <= set(scaling) \
            or set(scaling) - {"mean", "std", "channels"}:
        raise ValueError(f"scaling: got {scaling!r:.80}; allowed: {allowed}")
    out = {}
    for key in ("mean", "std"):
        values = np.asarray(scaling[key], dtype=np.float64)
        if values.shape != (n_features,) or not np.isfinite(values).all() \
                or (key == "std" and (values <= 0).any()):
            raise ValueError(f"scaling.{key}: got {scaling[key]!r:.80}; allowed: {n_features} "
                             "finite values" + (" > 0" if key == "std" else ""))
        out[key] = values.tolist()
    channels = scaling.get("channels")
    if channels is not None and (len(channels) != n_features
                                 or not all(isinstance(c, str) for c in channels)):
        raise ValueError(f"scaling.channels: got {channels!r:.80}; allowed: {n_features} names")
    out["channels"] = list(channels) if channels is not None else None
    return out


class ContrastiveLearner:
    """A contrastive representation learner for time series: the ``CellEncoder`` network of
    a spec, its training, inference and persistence.

    Args:
        spec: a valid architecture spec (see :mod:`search_spaces.spec`).
        n_features: C, the number of input channels.
        seed: seeds weight initialisation, batching and augmentation; same seed, same machine,
            same result. The caller's global torch random state is left untouched.

    Attributes:
        spec, n_features, seed: as given.
        repr_dim: D, the representation width.
        net: the network (``CellEncoder``, eval mode); after :meth:`fit`, the weight average.
        record: the training record of the last :meth:`fit` (None before training).
        scaling: the per-channel input scaling of the training data (see :meth:`scale`) or
            None; set it directly or through ``fit(..., scaling=...)``.

    Raises:
        ValueError: invalid spec, ``n_features`` < 1 or ``seed`` not an int >= 0.
    """

    def __init__(self, spec: dict, n_features: int, seed: int = 0):
        validate(spec)
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed: got {seed!r}; allowed: an int >= 0")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(seed))
            self.net = build_model(spec, n_features).eval()
            self._rng_state = torch.get_rng_state()  # training continues this stream
        self.spec, self.n_features, self.seed = spec, n_features, int(seed)
        self.repr_dim = spec["Encoder"]["repr_dim"]
        self.record = None
        self._scaling = None

    @property
    def scaling(self) -> dict | None:
        return self._scaling

    @scaling.setter
    def scaling(self, value) -> None:
        self._scaling = check_scaling(value, self.n_features)

    def fit(self, series, profile="small", verbose: bool = False, scaling=None) -> dict:
        """Train contrastively on ``series`` (N, T, C; NaN = missing), already scaled.

        The loop is TS2Vec's (see :mod:`.trainer`); calling ``fit`` again continues from the
        current (weight-averaged) network with a new optimiser.

        Args:
            profile: smoke, screen, small or paper (see :data:`~.trainer.PROFILES`), or a
                dict of ``n_iters``, ``max_length``, ``max_seconds``.
            scaling: optional input scaling of ``series`` (see :attr:`scaling`), stored.

        Returns:
            the training record (see :func:`~.trainer.train`): ``status``, ``loss_curve``,
            ``seconds``, ``n_params``, ``profile``, ...; a diverged run is recorded
            (``status`` "diverged"), not raised.

        Raises:
            ValueError: invalid series, profile or scaling (before any training).
        """
        scaling = check_scaling(scaling, self.n_features)
        with torch.random.fork_rng(devices=[]):
            torch.set_rng_state(self._rng_state)
            self.net, record = train(self.net, self.spec, series, profile, self.seed, verbose)
            self._rng_state = torch.get_rng_state()
        self.record = record
        if scaling is not None:
            self._scaling = scaling
        return record

    def encode(self, x, causal: bool = False, sliding_padding: int = 0,
               batch_size: int = 256, steps=None) -> np.ndarray:
        """Representations of every timestamp: x (N, T, C), scaled -> (N, T, D) float32.

        With ``sliding_padding`` = 0 and ``causal`` False each series is encoded whole. Otherwise
        the representation of step t is the encoder output at t for the window
        [t - sliding_padding, t] (causal, the TS2Vec forecasting protocol, Yue et al. 2022 Sec.
        4.2) or [t - sliding_padding, t + sliding_padding] (non-causal); steps outside the series
        are NaN, i.e. masked. Windows are batched (``batch_size`` windows per forward pass).
        ``steps`` (1-D ints in [0, T), sliding encoding only) restricts the output to those
        timestamps: (N, len(steps), D). Raw data: ``encode(learner.scale(raw))``.

        Raises:
            ValueError: wrong shape or channel count, negative padding, batch_size < 1,
                ``steps`` out of range or given without sliding encoding.
        """
        return _encode(self.net, x, causal, sliding_padding, batch_size, steps)

    def scale(self, x) -> np.ndarray:
        """Apply the stored input scaling to raw data: ``(x - mean) / std`` per channel over
        the last axis (x (..., C), e.g. (N, T, C) or (T, C)) -> float32, NaN kept.

        Raises:
            ValueError: no scaling stored, or the last axis is not C.
        """
        if self._scaling is None:
            raise ValueError("scaling: got None; allowed: a learner trained or loaded with an "
                             "input scaling (fit(..., scaling=...) or learner.scaling = ...)")
        arr = np.asarray(x, dtype=np.float64)
        if arr.ndim < 1 or arr.shape[-1] != self.n_features:
            raise ValueError(f"x: got shape {arr.shape}; allowed: (..., C) with "
                             f"C = {self.n_features}")
        mean, std = np.asarray(self._scaling["mean"]), np.asarray(self._scaling["std"])
        return ((arr - mean) / std).astype(np.float32)

    def to_bytes(self) -> bytes:
        """The saved file's bytes (see :mod:`.storage`), e.g. to send across processes."""
        state = {k: v.detach().cpu().clone() for k, v in self.net.state_dict().items()}
        return storage.to_bytes({
            "format": storage.FORMAT, "format_version": storage.FORMAT_VERSION,
            "ctsnas_version": storage.ctsnas_version(), "spec": self.spec,
            "n_features": self.n_features, "seed": self.seed, "scaling": self._scaling,
            "record": self.record, "state_dict": state,
            "weights_sha256": storage.weights_digest(state)})

    def save(self, path) -> None:
        """Write the learner to ``path`` in one file (atomically: a temporary file, then
        ``os.replace``): spec, weights, n_features, seed, input scaling, the training record
        (with its loss curve), the format version and the ctsnas version."""
        storage.write_atomic(self.to_bytes(), path)

    @classmethod
    def load(cls, path) -> "ContrastiveLearner":
        """A learner saved by :meth:`save` (read with ``torch.load(..., weights_only=True)``).

        Raises:
            ValueError: a missing path, a truncated or corrupted file, a file that is not a
                ctsnas encoder, or another format version; the message names the path.
        """
        return cls._from_payload(storage.read_payload(path, str(path)), str(path))

    @classmethod
    def from_bytes(cls, data: bytes, name: str = "<bytes>") -> "ContrastiveLearner":
        """A learner from :meth:`to_bytes` output; errors as :meth:`load`, naming ``name``."""
        return cls._from_payload(storage.read_payload(bytes(data), name), name)

    @classmethod
    def _from_payload(cls, payload: dict, name: str) -> "ContrastiveLearner":
        try:
            learner = cls(payload["spec"], payload["n_features"], payload["seed"])
            learner.net.load_state_dict(payload["state_dict"])
            learner.scaling = payload["scaling"]
        except (ValueError, RuntimeError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ValueError(f"path: {name} holds an inconsistent encoder ({first}); "
                             f"allowed: {storage.ALLOWED}") from None
        learner.record = payload["record"]
        return learner

    def __repr__(self) -> str:
        status = self.record["status"] if self.record else "no training record"
        return (f"ContrastiveLearner(C={self.n_features}, D={self.repr_dim}, "
                f"params={count_parameters(self.net)}, seed={self.seed}, {status})")


def fit(spec: dict, series, profile="small", seed: int = 0, verbose: bool = False,
        scaling=None) -> tuple:
    """Build a :class:`ContrastiveLearner` for ``series`` (N, T, C) and train it:
    ``(learner, record)``. Same numbers as ``ContrastiveLearner(spec, C, seed).fit(...)``.

    Raises:
        ValueError: invalid spec, series, profile or scaling (checked before any training).
    """
    validate(spec)
    arr = check_series(series)
    resolve_profile(profile)
    learner = ContrastiveLearner(spec, arr.shape[2], seed)
    record = learner.fit(arr, profile, verbose, scaling)
    return learner, record
