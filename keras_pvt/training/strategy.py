"""Choosing a `tf.distribute` strategy: one device, many GPUs, many machines, or a TPU."""

from __future__ import annotations

import json
import os

import tensorflow as tf

STRATEGIES = ("auto", "mirrored", "multi_worker", "tpu")


def cluster_spec() -> dict:
    """The parsed ``TF_CONFIG`` environment variable ({} when unset)."""
    raw = os.environ.get("TF_CONFIG", "")
    if not raw:
        return {}
    try:
        return json.loads(raw)
    except json.JSONDecodeError as error:
        raise ValueError(f"TF_CONFIG is not valid JSON ({error}): {raw[:200]!r}") from error


def num_workers() -> int:
    cluster = cluster_spec().get("cluster", {})
    return len(cluster.get("worker", [])) + len(cluster.get("chief", []))


def get_strategy(
    name: str = "auto", tpu: str | None = None, devices: list[str] | None = None
) -> tf.distribute.Strategy:
    """A strategy by name.

    * ``"auto"``: a TPU if `tpu` is given, else multi-worker when ``TF_CONFIG`` lists several
      workers, else mirrored over all GPUs when there are several, else the default (one device).
    * ``"mirrored"``: `tf.distribute.MirroredStrategy` over `devices` (default: all GPUs, or CPU).
    * ``"multi_worker"``: `tf.distribute.MultiWorkerMirroredStrategy`; the cluster comes from
      ``TF_CONFIG`` (``{"cluster": {"worker": ["host:port", ...]}, "task": {"type": "worker",
      "index": i}}``), the same command runs on every worker.
    * ``"tpu"``: `tf.distribute.TPUStrategy` on the TPU named by `tpu` ("" = local / Cloud TPU VM).
    """
    if name not in STRATEGIES:
        raise ValueError(f"Unknown strategy {name!r}; choose one of {', '.join(STRATEGIES)}.")
    if name == "auto":
        if tpu is not None:
            name = "tpu"
        elif num_workers() > 1:
            name = "multi_worker"
        elif len(tf.config.list_logical_devices("GPU")) > 1:
            name = "mirrored"
        else:
            return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy(devices=devices)
    if name == "multi_worker":
        if not cluster_spec():
            print("TF_CONFIG is not set: multi_worker runs as a single worker on this machine.")
        return tf.distribute.MultiWorkerMirroredStrategy()
    return _tpu_strategy(tpu or "")


def _tpu_strategy(address: str) -> tf.distribute.Strategy:
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=address)
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
    except (ValueError, tf.errors.OpError, RuntimeError) as error:
        raise ValueError(
            f"No TPU found at {address or '(local)'!r}: {error}. Run on a TPU VM, pass --tpu NAME "
            "for a TPU node, or choose --strategy auto|mirrored|multi_worker."
        ) from error
    return tf.distribute.TPUStrategy(resolver)


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Whether this process writes the run's outputs (always true outside multi-worker training)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return True
    task_type, task_id = resolver.task_type, resolver.task_id
    return task_type in (None, "chief") or (
        task_type == "worker" and task_id == 0 and "chief" not in cluster_spec().get("cluster", {})
    )
