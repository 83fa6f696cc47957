# The repository's only entry points. Each target creates the venv and installs
# every package (editable) on a fresh machine with nothing but Python 3.11.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PACKAGES := jax-smm calibrated-response tfmpe scribe kkt-nets
# Each package's test folder: tests/, or test/ where its spec names that.
TESTDIR = $$(ls -d packages/$$p/tests packages/$$p/test 2>/dev/null | head -1)
STAMP := $(VENV)/.installed
PYPROJECTS := pyproject.toml $(foreach p,$(PACKAGES),packages/$(p)/pyproject.toml)

.PHONY: venv install demo test test-all bench lint format clean

venv: $(STAMP)
install: $(STAMP)

$(STAMP): $(PYPROJECTS) Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet pytest ruff \
		$(foreach p,$(PACKAGES),-e "packages/$(p)[test,bench]")
	# scribe's real-data tests read the UMI sample inside celltypist's wheel
	$(PY) -m pip install --quiet --no-deps celltypist==1.7.1
	touch $(STAMP)

demo: $(STAMP)
	@echo "=== demo: jax-smm ==="
	$(VENV)/bin/jax-smm-demo
	@echo "=== demo: calibrated-response ==="
	$(VENV)/bin/calibrated-response fit packages/calibrated-response/examples/weather.json \
		--out calibrated_response_demo_output
	@echo "=== demo: tfmpe ==="
	$(PY) packages/tfmpe/examples/tokens_tour.py --out tfmpe_demo_output
	$(PY) packages/tfmpe/examples/hierarchical.py --out tfmpe_demo_output
	@echo "=== demo: scribe ==="
	$(PY) packages/scribe/examples/fit_simulated.py --out scribe_demo_output
	@echo "=== demo: kkt-nets ==="
	$(PY) packages/kkt-nets/examples/quickstart.py --out kkt_nets_demo_output

# Packages whose fast tests are bound by XLA compilation (single-threaded):
# two pytest workers nearly halve their time.
PARALLEL_TESTS := tfmpe scribe

test: $(STAMP)
	@for p in $(PACKAGES); do \
		echo "=== tests: $$p ==="; \
		$(PY) -m pytest -m "not slow" $$(echo " $(PARALLEL_TESTS) " | grep -q " $$p " && echo "-n 2") \
			$(TESTDIR) || exit 1; \
	done

test-all: $(STAMP)
	@for p in $(PACKAGES); do \
		$(PY) -m pytest $(TESTDIR) || exit 1; \
	done

bench: $(STAMP)
	@for f in $(foreach p,$(PACKAGES),$(wildcard packages/$(p)/benchmarks/bench_*.py)); do \
		echo "=== bench: $$f ==="; \
		$(PY) $$f || exit 1; \
	done

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	rm -rf $(VENV)
