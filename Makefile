# `make demo`: the end-to-end job on the embedded offline dataset (`make demo-segmentation`,
# `make demo-detection`: the segmentation and detection ones). `make test`: the test suite (CI):
# TensorFlow, then `make test-backends` (the all_backends tests on JAX and PyTorch);
# `make test-fast`: the quick lane (TensorFlow only).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export TF_CPP_MIN_LOG_LEVEL ?= 2
export PYTHONUNBUFFERED := 1
# The TensorFlow suites run in 2 pytest-xdist workers, one test file each at a time (module fixtures
# are built once): most slow tests are single-threaded graph tracing, so 2 workers on 2 cores take the
# TF lane from ~27 to ~17 minutes. `make test TEST_WORKERS=0` runs them in one process.
TEST_WORKERS ?= 2

.PHONY: demo demo-segmentation demo-detection test test-fast test-backends lint fixtures bench clean

$(STAMP): setup.cfg pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/keras-pvt demo --output demo_output

demo-segmentation: $(STAMP)
	$(VENV)/bin/keras-pvt demo --task segmentation --output demo_output_segmentation

demo-detection: $(STAMP)
	$(VENV)/bin/keras-pvt demo --task detection --output demo_output_detection

test: $(STAMP)
	$(PY) -m ruff check keras_pvt tests $(wildcard benchmarks)
	$(PY) -m ruff format --check keras_pvt tests $(wildcard benchmarks)
	$(PY) -m pytest -q -ra -n $(TEST_WORKERS) --dist loadfile --durations=40 tests
	$(MAKE) --no-print-directory test-backends

# The backend-agnostic subset (tests marked `all_backends`) again under JAX and PyTorch, a few
# minutes each on 2 cores (the TensorFlow run above includes those tests). On JAX the lane is mostly
# XLA compiling each op and initializer shape once: LLVM's -O0 compiles ~3x faster (same results),
# and of the slow tests only the JAX-specific ones (tests/test_backends.py: jit, fit, .keras files
# from other backends) run there, and the fast ones in 2 workers like the TensorFlow lane (XLA compiles
# on one core each: ~5 -> ~3.5 minutes); PyTorch runs the whole subset in one process (its ops use
# both cores: 2 workers made it slower, 42 -> 63 s).
test-backends: $(STAMP)
	XLA_FLAGS=--xla_backend_optimization_level=0 KERAS_BACKEND=jax $(PY) -m pytest -q -ra -n $(TEST_WORKERS) --dist loadfile -m "all_backends and not slow" tests
	XLA_FLAGS=--xla_backend_optimization_level=0 KERAS_BACKEND=jax $(PY) -m pytest -q -ra -m "all_backends and slow" tests/test_backends.py
	KERAS_BACKEND=torch $(PY) -m pytest -q -ra -m all_backends tests

# The quick lane for iterating (a few minutes on 2 cores): everything but the tests marked `slow`
# (training, distributed, notebooks, the demo, kill tests, fresh processes, int8 calibration, anything
# over a few seconds). CI runs the full `make test`.
test-fast: $(STAMP)
	$(PY) -m ruff check keras_pvt tests $(wildcard benchmarks)
	$(PY) -m pytest -q -ra -n $(TEST_WORKERS) --dist loadfile -m "not slow" tests

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check keras_pvt tests $(wildcard benchmarks)

# Regenerate the timm-made parity fixtures (needs ../shared/peers/setup.sh; not part of CI).
fixtures:
	bash ../shared/peers/setup.sh /tmp/pvt-peers
	/tmp/pvt-peers/timm/bin/pip install -q transformers  # only for the HF-named fixtures
	/tmp/pvt-peers/timm/bin/python tests/fixtures/make_reference.py
	/tmp/pvt-peers/timm/bin/python tests/fixtures/make_variant_reference.py  # b0 ... b5, b2_li on seeded weights
	/tmp/pvt-peers/timm/bin/python tests/fixtures/make_channels_reference.py
	/tmp/pvt-peers/timm/bin/python tests/fixtures/make_torch_pickles.py
	/tmp/pvt-peers/timm/bin/python tests/fixtures/make_segmentation_reference.py  # mmseg's Semantic FPN
	/tmp/pvt-peers/timm/bin/python tests/fixtures/make_detection_reference.py  # mmdet's RetinaNet
	/tmp/pvt-peers/timm/bin/python tests/fixtures/make_detection_loss_reference.py  # mmdet RetinaNet losses, assigner, targets

# `make bench`: keras-pvt side by side with its peers, each in its own venv built by
# ../shared/peers/setup.sh under /tmp/pvt-peers (PVT_PEERS=DIR elsewhere): timm (also -> ONNX Runtime,
# OpenVINO), kecam, zeromodels and timm -> litert-torch; missing peers are named and skipped. Writes
# benchmarks/results/bench.md (and .json): the machine, its SIMD features, every venv's versions, the
# load, the tables and the checks. BENCH_ARGS="--only deploy,tflite": the deployment and .tflite tables
# alone; "--quick": a smoke run; "--baseline HEAD": also time keras-pvt at a git revision, side by side.
bench: $(STAMP)
	$(PY) benchmarks/run_all.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) demo_output demo_output_segmentation .pytest_cache
