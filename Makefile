# Two commands do everything on a fresh machine:
#   make lab    set up, then run the main job on the built-in data (until the GUI lands:
#               full-data PointNet training on the built-in shapes)
#   make test   set up, then run the whole test suite (what CI runs)
# GPU machines: make lab EXTRA=gpu (plain open3d; install a CUDA torch first, see README "GPU").
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
	$(BIN)/dd3d train --config configs/shapes.yaml --out runs/shapes-full

test: setup
	$(BIN)/python -m pytest -q
