"""A Ray cluster of N nodes on this machine (``ray.cluster_utils.Cluster``), on loopback only.

For tests and ``bench --cluster local:N``: every node is its own raylet (its own worker
processes), so an actor on one node and its restart on another behave as on separate machines;
``remove_node`` is a node failure. ``shutdown`` stops this cluster's processes and nothing else
(never ``ray stop``: that kills every Ray process of the machine).

Usage::

    with LocalCluster(nodes=2, cpus_per_node=2) as cluster:
        actor = start_camera(spec, node_id=cluster.node_ids[1])
        cluster.remove_node(1)
"""

from __future__ import annotations

import os
import time

from . import NAMESPACE, require_ray

LOOPBACK = "127.0.0.1"


def _loopback_only(ray) -> None:
    """Make Ray take 127.0.0.1 as this machine's address. Without it ``ray.init`` turns a loopback
    address into the machine's network address (a cluster bound to loopback is then unreachable);
    the variable reaches the nodes' processes, which are children of this one."""
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    from ray._private import ray_constants

    ray_constants.ENABLE_RAY_CLUSTER = False  # (read at call time, the variable only at import)


class LocalCluster:
    """``nodes`` nodes (the first is the head) of ``cpus_per_node`` logical CPUs each; the driver
    (this process) is connected to it in the ``tiltwatch`` namespace."""

    def __init__(
        self,
        nodes: int = 2,
        cpus_per_node: float = 2,
        object_store_mb: int = 100,
        memory_mb_per_node: int | None = None,
        cameras_per_node: int | None = None,
        head_cameras: int | None = None,
    ):
        """``cameras_per_node``: each node declares that many camera slots (cameras started with
        ``slot`` take one each: a node's cap); ``head_cameras``: the head's own (0: it runs none)."""
        if nodes < 1:
            raise ValueError("a cluster needs at least one node")
        self.ray = ray = require_ray()
        from ray.cluster_utils import Cluster

        _loopback_only(ray)
        args = {
            "num_cpus": cpus_per_node,
            "node_ip_address": LOOPBACK,
            "object_store_memory": object_store_mb * 1024 * 1024,
        }
        if memory_mb_per_node:
            args["memory"] = memory_mb_per_node * 1024 * 1024
        head = {**args, "include_dashboard": False}
        if cameras_per_node is not None:
            from .camera import CAMERA_SLOT

            args["resources"] = {CAMERA_SLOT: cameras_per_node}
            cap = cameras_per_node if head_cameras is None else head_cameras
            head["resources"] = {CAMERA_SLOT: cap} if cap else {}
            if cap == 0:
                head["num_cpus"] = 0  # (nothing of ours runs there)
        t0 = time.perf_counter()
        self._cluster = Cluster(initialize_head=True, head_node_args=head)
        self._nodes = [self._cluster.head_node]
        for _ in range(nodes - 1):
            self._nodes.append(self._cluster.add_node(**args))
        ray.init(address=self._cluster.address, namespace=NAMESPACE, logging_level="warning", log_to_driver=False)
        self._cluster.wait_for_nodes()
        self.started_s = time.perf_counter() - t0

    @property
    def address(self) -> str:
        return self._cluster.address

    @property
    def node_ids(self) -> list[str]:
        """Ray's node ids, head first (a removed node keeps its place, as None)."""
        return [n.node_id if n is not None else None for n in self._nodes]

    def remove_node(self, index: int) -> None:
        """A node failure: node ``index`` (not the head, 0) stops, its actors go elsewhere."""
        if index == 0:
            raise ValueError("removing the head node ends the cluster")
        self._cluster.remove_node(self._nodes[index])
        self._nodes[index] = None

    def shutdown(self) -> None:
        """Stop this cluster's processes (detached actors included); the driver disconnects first."""
        self.ray.shutdown()
        self._cluster.shutdown()

    def __enter__(self) -> LocalCluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
