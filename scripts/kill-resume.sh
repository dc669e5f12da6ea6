#!/usr/bin/env bash
# Issue 19's run-folder check through the binary: a second `ponder train` on a folder in use must
# refuse; then 20 SIGKILLs at random moments, each followed by --resume, must leave no temporary
# folders or files and a metrics.jsonl with every (stage, step) exactly once.
# Usage: scripts/kill-resume.sh [kills]   (needs .build/release/ponder; about a minute)
set -euo pipefail
cd "$(dirname "$0")/.."
PONDER=.build/release/ponder
KILLS=${1:-20}
WORK=$(mktemp -d)
trap '[ -n "${KEEP:-}" ] || rm -rf "$WORK"' EXIT
cat > "$WORK/tiny.yaml" <<YAML
seed: 3
threads: 1
model: {d_model: 32, layers: 1, heads: 2, ff_dim: 64, max_context: 64}
data: {families: [add], datasets: "$PWD/datasets"}
sft: {steps: 600, num_traces: 16, levels: [1], batch_size: 8, learning_rate: 3.0e-3, validation_per_level: 8, eval_every: 20, patience: 50}
grpo: {steps: 100, prompts_per_step: 2, num_generations: 4, max_completion_length: 40}
eval: {every: 10, levels: [1], limit_per_level: 4}
checkpoint: {every: 5, keep_last: 2}
YAML
RUN="$WORK/run"
"$PONDER" train "$WORK/tiny.yaml" --run-dir "$RUN" > "$WORK/a.log" 2>&1 &
A=$!
sleep 1
if "$PONDER" train "$WORK/tiny.yaml" --run-dir "$RUN" --resume > "$WORK/b.log" 2>&1; then
  echo "FAIL: a second train on a folder in use was accepted"; exit 1
fi
echo "second train refused: $(tail -1 "$WORK/b.log")"
kill -9 $A 2>/dev/null || true
wait $A 2>/dev/null || true
for i in $(seq 1 "$KILLS"); do
  "$PONDER" train "$WORK/tiny.yaml" --run-dir "$RUN" --resume > "$WORK/k.log" 2>&1 &
  P=$!
  sleep "0.$((RANDOM % 9 + 1))$((RANDOM % 10))"
  kill -9 $P 2>/dev/null || true
  wait $P 2>/dev/null || true
done
"$PONDER" train "$WORK/tiny.yaml" --run-dir "$RUN" --resume > "$WORK/final.log" 2>&1
echo "after $KILLS kills, the last resume: $(grep -m1 'resuming from\|starting fresh\|has finished' "$WORK/final.log" || echo '?')"
"$PONDER" train "$WORK/tiny.yaml" --run-dir "$RUN" --resume | tail -1
left=$(find "$RUN" -name '.tmp-*' -o -name '.deleting-*' -o -name '.old-*' -o -name '.*.tmp-*' | wc -l)
python3 - "$RUN/metrics.jsonl" "$left" <<'PY'
import json, sys, collections
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
count = collections.Counter((r["stage"], r["step"]) for r in rows)
dups = [k for k, n in count.items() if n > 1]
steps = sorted(r["step"] for r in rows if r["stage"] in ("sft", "grpo"))
ok = not dups and steps == list(range(1, 701)) and sys.argv[2] == "0"
print(f"{len(rows)} metrics rows, train steps 1..{steps[-1] if steps else 0} each once: {steps == list(range(1, 701))}, "
      f"duplicated (stage, step): {len(dups)} {dups[:5]}, temporaries left: {sys.argv[2]}")
sys.exit(0 if ok else 1)
PY
