"""Training on several machines (tf.distribute.MultiWorkerMirroredStrategy) or several GPUs (MirroredStrategy).

A cluster is named by ``TF_CONFIG``, as TensorFlow documents it::

    TF_CONFIG='{"cluster": {"worker": ["10.0.0.1:12345", "10.0.0.2:12345"]}, "task": {"type": "worker", "index": 0}}'

or by ``edgecnn train --cluster 10.0.0.1:12345,10.0.0.2:12345 --worker-index 0``, which writes that
``TF_CONFIG``. Every worker runs the same command on its own copy of the data. The chief (task ``chief``,
else worker 0) alone writes the run directory and checkpoints; ``--batch-size`` is the global batch, split
evenly across workers, and each worker trains on its own shard of the images.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from dataclasses import dataclass

from edgecnn.compat import patch_keras_multi_worker
from edgecnn.errors import ClusterError, UsageError, first_line

log = logging.getLogger("edgecnn.train")

TF_CONFIG = "TF_CONFIG"


@dataclass(frozen=True)
class Cluster:
    """This process's place in the cluster: ``count`` training tasks, this one of ``rank`` (chief = 0)."""

    count: int = 1
    rank: int = 0

    @property
    def multi_worker(self) -> bool:
        return self.count > 1

    @property
    def is_chief(self) -> bool:
        return self.rank == 0


def cluster_config(addresses: list[str], index: int) -> dict:
    """The ``TF_CONFIG`` for worker ``index`` of ``addresses`` (HOST:PORT each)."""
    for address in addresses:
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit():
            raise UsageError(f"--cluster takes HOST:PORT,HOST:PORT,...; received {address!r}")
    if not 0 <= index < len(addresses):
        raise UsageError(f"--worker-index must be between 0 and {len(addresses) - 1} for {len(addresses)} "
                         f"workers; received {index}")
    return {"cluster": {"worker": list(addresses)}, "task": {"type": "worker", "index": index}}


def resolve_cluster(addresses: list[str] | None = None, index: int | None = None) -> Cluster:
    """The cluster from ``--cluster``/``--worker-index`` (which then set ``TF_CONFIG``), else from ``TF_CONFIG``."""
    if addresses:
        if index is None:
            raise UsageError("--cluster needs --worker-index N (0 on the chief, 1, 2, ... on the others)")
        os.environ[TF_CONFIG] = json.dumps(cluster_config(addresses, index))
    elif index is not None:
        raise UsageError("--worker-index needs --cluster HOST:PORT,HOST:PORT,...")
    text = os.environ.get(TF_CONFIG, "").strip()
    if not text:
        return Cluster()
    try:
        config = json.loads(text)
        tasks = config.get("cluster", {})
        chiefs, workers = list(tasks.get("chief", [])), list(tasks.get("worker", []))
        kind, task_index = config["task"]["type"], int(config["task"]["index"])
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise UsageError(f"{TF_CONFIG} is not a cluster specification ({type(exc).__name__}: {exc}); expected "
                         f'{{"cluster": {{"worker": ["host:port", ...]}}, "task": {{"type": "worker", '
                         f'"index": 0}}}}') from None
    other = sorted(set(tasks) - {"chief", "worker"})
    if other or kind not in ("chief", "worker"):
        raise UsageError(f"{TF_CONFIG} names task types edgecnn does not run ({', '.join(other or [kind])}); "
                         f"MultiWorkerMirroredStrategy takes chief and worker tasks only")
    if len(chiefs) > 1:
        raise UsageError(f"{TF_CONFIG} names {len(chiefs)} chiefs; a cluster has at most one")
    rank = task_index if kind == "chief" else len(chiefs) + task_index
    count = len(chiefs) + len(workers)
    if not 0 <= rank < count:
        raise UsageError(f"{TF_CONFIG} task {kind} {task_index} is not in its cluster ({count} tasks)")
    return Cluster(count=count, rank=rank)


def make_strategy(cluster: Cluster):
    """MultiWorkerMirroredStrategy for a cluster, MirroredStrategy for several GPUs, else None (default)."""
    import tensorflow as tf

    if cluster.multi_worker:
        log.info(f"cluster: this is worker {cluster.rank} of {cluster.count}"
                 f"{' (the chief)' if cluster.is_chief else ''}; waiting for every worker to join")
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
        patch_keras_multi_worker()
        return strategy
    return tf.distribute.MirroredStrategy() if len(tf.config.list_physical_devices("GPU")) > 1 else None


def per_worker_batch(batch_size: int, cluster: Cluster) -> int:
    if batch_size % cluster.count:
        raise UsageError(f"--batch-size {batch_size} is the global batch and must divide evenly among "
                         f"{cluster.count} workers; use a multiple of {cluster.count}")
    return batch_size // cluster.count


@contextlib.contextmanager
def worker_failures(cluster: Cluster):
    """A worker that stops mid-training breaks every collective step: one clear error instead of a traceback."""
    if not cluster.multi_worker:
        yield
        return
    import tensorflow as tf

    try:
        yield
    except (tf.errors.UnavailableError, tf.errors.AbortedError, tf.errors.DeadlineExceededError,
            tf.errors.CancelledError) as exc:
        raise ClusterError(f"worker {cluster.rank}: another worker of the cluster stopped or cannot be reached "
                           f"({type(exc).__name__}: {first_line(exc, 160)}); start every worker again") from None


def barrier(strategy) -> None:
    """Wait until every worker gets here (a one-number all-reduce)."""
    import tensorflow as tf

    strategy.reduce("SUM", strategy.run(lambda: tf.constant(1.0)), axis=None)

