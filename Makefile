# The two commands of the README: `make quickstart` (the main job) and `make test`.
SWIFT ?= swift
PONDER := .build/release/ponder

.PHONY: deps build quickstart test bench

deps:
	@bash scripts/install-deps.sh

build: deps
	$(SWIFT) build -c release

# The main job. Until the trainer lands this is the OpenBLAS benchmark; it grows into
# `ponder train configs/quickstart.yaml` followed by its evaluation table and reward curve.
quickstart: build
	$(PONDER) bench matmul

# Tests run in release: numeric Swift in debug is 10-50x slower.
test: deps
	$(SWIFT) test -c release

bench: build
	$(PONDER) bench matmul
