# Two commands do everything on a fresh machine:
#   make lab    set up, then open the lab (dd3d-lab) on the built-in data; without a display (a server,
#               a container) it runs LAB_ITERATIONS iterations in a virtual display (Xvfb) and writes
#               the window's screenshot and a `dd3d-render` figure into LAB_OUT (docs/lab.md)
#   make test   set up, then run the whole test suite (what CI runs)
# GPU machines: make lab EXTRA=gpu (plain open3d; install a CUDA torch first, see docs/distributed.md "GPU").
VENV ?= .venv
EXTRA ?= cpu
PYTHON ?= python3
LAB_OUT ?= lab-output
LAB_ITERATIONS ?= 30
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
	$(BIN)/dd3d-lab --config configs/shapes.yaml --headless $(LAB_OUT) --after $(LAB_ITERATIONS)

test: setup
	$(BIN)/python -m pytest -q
