"""The machine's float32 peak, measured: the fastest large square matmul at a given thread count.

    python benchmarks/roofline.py [--threads 2] [--size 2048] [--repeats 10]

Times `size` x `size` by `size` x `size` float32 matmuls (2 * size**3 FLOPs each) with NumPy (its
BLAS) and with TensorFlow (oneDNN), each limited to `threads` threads, and prints one JSON object:
per library the best and the median GFLOP/s over `repeats` calls after a warm-up, and "peak_gflops",
the best of them all. A large matmul is the most compute-bound kernel either library has, so its
rate stands for the float32 roofline that the benchmark report measures whole models against.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any


def rates(matmul: Callable[[], Any], flops: float, repeats: int) -> dict[str, float]:
    matmul()  # warm-up: thread pools, kernel selection
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        matmul()
        seconds.append(time.perf_counter() - start)
    return {
        "best_gflops": flops / min(seconds) / 1e9,
        "median_gflops": flops / statistics.median(seconds) / 1e9,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args(argv)
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[name] = str(args.threads)  # read when NumPy's BLAS starts
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import numpy as np

    a, b = (np.random.default_rng(i).normal(size=(args.size, args.size)).astype("float32") for i in (0, 1))
    flops = 2.0 * args.size**3
    out: dict[str, Any] = {"threads": args.threads, "size": args.size, "repeats": args.repeats}
    out["numpy"] = rates(lambda: a @ b, flops, args.repeats)
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    x, y = tf.constant(a), tf.constant(b)
    out["tensorflow"] = rates(lambda: tf.linalg.matmul(x, y).numpy(), flops, args.repeats)
    out["peak_gflops"] = max(out[k]["best_gflops"] for k in ("numpy", "tensorflow"))
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
