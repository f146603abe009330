"""Ray start-up of a search: its own embedded local instance, or a cluster at an address that
is checked for reachability first.

Without an address the search starts a new local Ray (``ray.init(address="local")``) sized to
``workers * cpus_per_trial``, even when another Ray runs on the machine (or a stale record of
one is left in Ray's temp folder). With ``host:port`` a TCP connect with a short timeout comes
first, so a wrong address fails in seconds instead of Ray's minutes of retries; a cluster that
refuses the driver (Ray >= 2.60 token authentication) is named with the fix.
"""
from __future__ import annotations

import socket

import ray

#: Seconds the reachability check waits for the head's TCP port.
CONNECT_TIMEOUT = 5.0
AUTH_HINT = ("if the head was started with token authentication (Ray >= 2.60), set "
             "RAY_AUTH_MODE=token and RAY_AUTH_TOKEN to the head's token (ray get-auth-token "
             "on the head) on this machine; else check the address (ray status on the head)")


def split_address(address: str) -> tuple:
    """``host:port`` -> ``(host, port)``.

    Raises:
        ValueError: not ``host:port`` with a port in 1..65535.
    """
    host, _, port = str(address).rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"address: got {address!r}; allowed: auto or host:port, e.g. "
                         "10.0.0.5:6379 (the head's ray start --port)")
    return host.strip("[]"), int(port)


def check_reachable(address: str, timeout: float = CONNECT_TIMEOUT) -> None:
    """Open and close a TCP connection to ``address`` (``host:port``) within ``timeout`` s.

    Raises:
        ValueError: malformed address, unknown host, refused or timed-out connection.
    """
    host, port = split_address(address)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except socket.gaierror as exc:
        raise ValueError(f"address: cannot resolve host {host!r} ({exc.strerror}); allowed: "
                         "the head node's host:port, or leave it out for a local Ray") from None
    except OSError as exc:
        why = "timed out" if isinstance(exc, socket.timeout) else (exc.strerror or str(exc))
        raise ValueError(f"address: nothing answers at {host}:{port} within {timeout:g} s "
                         f"({why}); allowed: the address printed by ray start --head on the "
                         "head node (port 6379 by default), or leave it out for a local "
                         "Ray") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]


def join_cluster(address: str, timeout: float = CONNECT_TIMEOUT) -> None:
    """``ray.init`` on the cluster at ``address`` (``auto`` or ``host:port``) after the
    reachability check.

    Raises:
        ValueError: unreachable address, or Ray refused the connection (token
            authentication or no cluster), naming the likely cause and the fix.
    """
    if address != "auto":
        check_reachable(address, timeout)
    try:
        ray.init(address=address, log_to_driver=False)
    except (ConnectionError, RuntimeError, ray.exceptions.RayError) as exc:
        ray.shutdown()
        raise ValueError(f"address: could not join the Ray cluster at {address} "
                         f"({_first_line(exc)}); {AUTH_HINT}") from None


def start_local(num_cpus: int) -> None:
    """Start this search's own local Ray with ``num_cpus`` CPUs (never an existing one)."""
    ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, log_to_driver=False)


def init_ray(config: dict) -> None:
    """Join ``config["address"]`` (``auto`` or host:port) or start an embedded local Ray
    sized to ``workers * cpus_per_trial``; nothing when Ray is already initialised.

    Raises:
        ValueError: the address is unreachable or refuses the driver (see :func:`join_cluster`).
    """
    if ray.is_initialized():
        return
    if config.get("address"):
        join_cluster(config["address"])
    else:
        start_local(config["workers"] * config["cpus_per_trial"])
