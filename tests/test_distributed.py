"""tf.distribute: MirroredStrategy over two logical CPU devices matches one device;
MultiWorkerMirroredStrategy with two worker processes on 127.0.0.1 runs a training step."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest
import tensorflow_datasets as tfds

import keras_pvt.data  # noqa: F401  (registers keras_pvt_shapes)

HERE = os.path.dirname(os.path.abspath(__file__))
WORKER = os.path.join(HERE, "_distributed_worker.py")
DATASET = "keras_pvt_shapes/32px_256_64"
TIMEOUT_S = 300

pytestmark = pytest.mark.slow  # subprocesses and a dataset build: not in `make test-fast`


@pytest.fixture(scope="module")
def tfds_dir(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("tfds"))
    tfds.builder(DATASET, data_dir=path).download_and_prepare()  # once, before the workers
    return path


def _env(**extra):
    return {**os.environ, "PYTHONPATH": os.path.dirname(HERE), "TF_CPP_MIN_LOG_LEVEL": "3", **extra}


def _result(stdout: str):
    lines = [line for line in stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, stdout[-3000:]
    return json.loads(lines[-1][len("RESULT ") :])


def test_mirrored_two_logical_cpus_matches_one_device(tfds_dir, tmp_path):
    proc = subprocess.run(
        [sys.executable, WORKER, "mirrored", tfds_dir, str(tmp_path)],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    result = _result(proc.stdout)
    assert result["replicas"] == 2
    for key in ("loss", "val_loss"):
        np.testing.assert_allclose(result["mirrored"][key], result["single"][key], rtol=1e-3, err_msg=key)
    assert all(np.isfinite(result["single"]["loss"]))
    assert os.path.isfile(tmp_path / "mirrored" / "best.keras")


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def test_multi_worker_two_processes_on_localhost(tfds_dir, tmp_path):
    workers = [f"127.0.0.1:{port}" for port in _free_ports(2)]
    procs = []
    for index in range(2):
        config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        procs.append(
            subprocess.Popen(
                [sys.executable, WORKER, "multi_worker", tfds_dir, str(tmp_path / "run")],
                env=_env(TF_CONFIG=json.dumps(config)),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    outputs = []
    try:
        for proc in procs:
            outputs.append(proc.communicate(timeout=TIMEOUT_S))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    for proc, (stdout, stderr) in zip(procs, outputs):
        assert proc.returncode == 0, stderr[-4000:]
        losses = _result(stdout)
        assert len(losses["loss"]) == 1 and all(np.isfinite(losses["loss"]))
    # the chief (worker 0) wrote the run; worker 1 wrote only to a temporary folder
    assert os.path.isfile(tmp_path / "run" / "history.csv")
    assert os.path.isfile(tmp_path / "run" / "best.keras")
    assert not os.path.exists(tmp_path / "run" / "backup" / "worker_0")  # finished: removed
