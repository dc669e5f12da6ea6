#!/bin/bash
# One speed sitting, as docs/results.md ("Speed against the peers") reports it: with the environment as set,
# then with OPENBLAS_CORETYPE unset, back to back: compare.sh grpo and train, the quickstart-shaped step and the
# `--task add` step against their TRL peers, the d256 step in bf16 against f32 (twice), compare-bf16.sh grpo (as
# set only), then compare.sh grpo twice more. Run it alone on the machine, after `make build` and the peer venv
# (bench/README.md).
# usage: bench/sitting.sh SFT_DIR   (an addition policy, e.g. runs/quickstart/checkpoints/sft-final)
set -u
cd "$(dirname "$0")/.."
SFT=${1:?usage: bench/sitting.sh SFT_DIR (e.g. runs/quickstart/checkpoints/sft-final)}
P=${PEER_PYTHON:-$HOME/.ponder-peer/bin/python}
PONDER=.build/release/ponder
grep -m1 "model name" /proc/cpuinfo; grep -m1 "cpu family" /proc/cpuinfo; git log --oneline | head -1; date
for env in set unset; do
  if [ $env = unset ]; then unset OPENBLAS_CORETYPE; fi
  echo "=== OPENBLAS_CORETYPE ${OPENBLAS_CORETYPE:-unset}"
  ../shared/bench/compare.sh grpo
  ../shared/bench/compare.sh train
  $PONDER bench grpo --d 128 --layers 4 --heads 4 --ff 384 --prompts 16 --G 8 --new 64 --steps 10 2>&1 | grep -i median
  HF_HUB_OFFLINE=1 $P ../shared/bench/trl_peer.py --d 128 --layers 4 --heads 4 --ff 384 --prompts 16 --G 8 --new 64 --steps 6 2>/dev/null | grep '^{"peer'
  $PONDER bench grpo --from "$SFT" --task add --prompts 16 --G 8 --new 64 --beta 0 --steps 10 2>&1 | grep -i median
  HF_HUB_OFFLINE=1 $P bench/trl_task_peer.py --from "$SFT" --task add --prompts 16 --G 8 --new 64 --beta 0 --steps 6 2>/dev/null | grep '^{"peer'
  for i in 1 2; do
    for p in f32 bf16; do
      echo -n "$p: "
      $PONDER bench grpo --d 256 --layers 4 --heads 4 --ff 768 --prompts 8 --G 8 --new 128 --beta 0.04 --steps 5 --precision $p 2>&1 | grep -o "median.*update [0-9.]* s"
    done
  done
  if [ $env = set ]; then bench/compare-bf16.sh grpo; fi
  ../shared/bench/compare.sh grpo
  ../shared/bench/compare.sh grpo
done
date
