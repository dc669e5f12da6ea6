# The two commands of the README: `make quickstart` (the main job) and `make test`.
SWIFT ?= swift
PONDER := .build/release/ponder

.PHONY: deps build quickstart test bench

deps:
	@bash scripts/install-deps.sh

build: deps
	$(SWIFT) build -c release

# The main job: SFT then GRPO on 2-3 digit addition (a few minutes on 2 cores), ending in the
# start-vs-end held-out table and the reward curve. Each run starts afresh in runs/quickstart.
quickstart: build
	rm -rf runs/quickstart
	$(PONDER) train configs/quickstart.yaml

# Tests run in release: numeric Swift in debug is 10-50x slower. The build includes the ponder binary,
# which the fuzz suite's CLI cases run.
test: deps
	$(SWIFT) build -c release --build-tests
	$(SWIFT) test -c release --skip-build

bench: build
	$(PONDER) bench matmul
	$(PONDER) bench train
	$(PONDER) bench generate
	$(PONDER) bench grpo
