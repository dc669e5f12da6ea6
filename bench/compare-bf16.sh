#!/usr/bin/env bash
# bf16 against bf16: Ponder with `--precision bf16` (AMX tiles) against the same peer scripts run in
# bfloat16 mixed precision: torch_peer.py with its forward under torch.autocast("cpu", bfloat16), and
# trl_peer.py with GRPOConfig(bf16=True). The peers are ../shared/bench's own scripts, patched on the fly
# (those lines only) into a temporary folder, so the work stays identical; compare.sh then runs as usual.
# usage (from the project root): bench/compare-bf16.sh [generate|train|grpo|all]
set -eu
shared=$(cd "$(dirname "$0")/../../shared/bench" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp "$shared/compare.sh" "$tmp/"
python3 - "$shared" "$tmp" <<'EOF'
import sys
src, dst = sys.argv[1], sys.argv[2]
t = open(f"{src}/torch_peer.py").read()
for old, new in [
    ("        out = m(input_ids=x, labels=x)\n",
     "        with torch.autocast(\"cpu\", dtype=torch.bfloat16):\n            out = m(input_ids=x, labels=x)\n"),
    ("    with torch.no_grad():\n", "    with torch.no_grad(), torch.autocast(\"cpu\", dtype=torch.bfloat16):\n"),
]:
    assert t.count(old) == 1, f"torch_peer.py changed: cannot find {old!r}"
    t = t.replace(old, new)
open(f"{dst}/torch_peer.py", "w").write(t)
r = open(f"{src}/trl_peer.py").read()
assert r.count("bf16=False") == 1, "trl_peer.py changed: cannot find bf16=False"
open(f"{dst}/trl_peer.py", "w").write(r.replace("bf16=False", "bf16=True"))
EOF
PONDER_PRECISION=bf16 bash "$tmp/compare.sh" "${1:-all}"
