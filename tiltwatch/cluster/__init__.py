"""Scale-out on Ray: one detached actor per camera (:mod:`.camera`), the control plane of
``tiltwatch serve --cluster`` (:mod:`.control`), a local cluster for tests and trials (:mod:`.local`)
and ``tiltwatch bench --cluster`` (:mod:`.bench`).

Ray is an optional extra (``pip install -e ".[cluster]"``); nothing here imports it until it is used,
and :func:`require_ray` says how to get it when it is missing.
"""

from __future__ import annotations

from ..errors import TiltwatchError

NAMESPACE = "tiltwatch"  # the Ray namespace of the camera actors (detached actors are found by name in it)


def require_ray():
    """The ``ray`` module, or a TiltwatchError naming the extra that installs it."""
    try:
        import ray
    except ImportError:
        raise TiltwatchError("Ray is not installed: pip install -e \".[cluster]\" (ray[default]==2.60.0)") from None
    return ray
