# `make demo`: the end-to-end job on the embedded offline dataset. `make test`: the test suite (CI);
# `make test-fast`: the quick lane.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export TF_CPP_MIN_LOG_LEVEL ?= 2
export PYTHONUNBUFFERED := 1

.PHONY: demo test test-fast lint fixtures bench clean

$(STAMP): setup.cfg pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/keras-pvt demo --output demo_output

test: $(STAMP)
	$(PY) -m ruff check keras_pvt tests $(wildcard benchmarks)
	$(PY) -m ruff format --check keras_pvt tests $(wildcard benchmarks)
	$(PY) -m pytest -q -ra tests

# The quick lane for iterating (a few minutes on 2 cores): everything but the tests marked `slow`
# (training, distributed, notebooks, the demo, kill tests, fresh processes, int8 calibration, anything
# over a few seconds). CI runs the full `make test`.
test-fast: $(STAMP)
	$(PY) -m ruff check keras_pvt tests $(wildcard benchmarks)
	$(PY) -m pytest -q -ra -m "not slow" tests

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check keras_pvt tests $(wildcard benchmarks)

# Regenerate the timm-made parity fixtures (needs ../shared/peers/setup.sh; not part of CI).
fixtures:
	bash ../shared/peers/setup.sh /tmp/pvt-peers
	/tmp/pvt-peers/timm/bin/pip install -q transformers  # only for the HF-named fixtures
	/tmp/pvt-peers/timm/bin/python tests/fixtures/make_reference.py
	/tmp/pvt-peers/timm/bin/python tests/fixtures/make_channels_reference.py
	/tmp/pvt-peers/timm/bin/python tests/fixtures/make_torch_pickles.py

# `make bench BENCH_ARGS="--baseline HEAD"`: also time keras-pvt at a git revision, side by side.
bench: $(STAMP)
	$(PY) benchmarks/run_all.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) demo_output .pytest_cache
