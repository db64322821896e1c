# `make demo` and `make test` each create .venv if missing and install into it.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install demo test test-nojit bench clean

$(STAMP): setup.cfg pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch first, pinned: it resolves to the local CPU wheel instead of pulling CUDA.
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -c constraints.txt -e '.[test,bench]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PY) scripts/demo.py
	$(PY) scripts/reproduce_mail.py --quick

# The whole suite, then the solver tests again as plain Python (NUMBA_DISABLE_JIT=1)
# so the jitted kernels have pure-Python coverage too.
test: $(STAMP)
	$(PY) -m pytest -q
	NUMBA_DISABLE_JIT=1 $(PY) -m pytest -q tests/test_tabular.py

bench: $(STAMP)
	$(PY) -m pip install --quiet -c constraints.txt -e '.[ray]'
	$(PY) scripts/bench_tabular.py
	$(PY) scripts/bench_mail.py

clean:
	rm -rf $(VENV) *.egg-info
