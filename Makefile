# Two commands do everything on a fresh machine:
#   make lab    set up, then open the lab (dd3d-lab) on the built-in data
#   make test   set up, then run the whole test suite (what CI runs)
# GPU machines: make lab EXTRA=gpu (plain open3d; install a CUDA torch first, see docs/distributed.md "GPU").
VENV ?= .venv
EXTRA ?= cpu
PYTHON ?= python3
BIN := $(VENV)/bin

.PHONY: setup system lab test
system:
	@bash scripts/install-system-deps.sh

$(VENV)/.installed-$(EXTRA): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -e ".[$(EXTRA),test]"
	touch $@

setup: system $(VENV)/.installed-$(EXTRA)

lab: setup
	$(BIN)/dd3d-lab --config configs/shapes.yaml

test: setup
	$(BIN)/python -m pytest -q
