#!/usr/bin/env bash
# Renders a run's report.html in headless Chromium: saves a screenshot and checks that the page
# rendered its sections (the DOM Chromium built, not the file's text) without fetching anything.
# usage: scripts/check-report.sh RUN_DIR [SCREENSHOT.png]     (apt-get install -y chromium)
set -euo pipefail
run=${1:?usage: scripts/check-report.sh RUN_DIR [SCREENSHOT.png]}
shot=${2:-$run/report.png}
page="$run/report.html"
[ -f "$page" ] || { echo "no $page: run 'ponder report $run' first" >&2; exit 2; }
browser=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
[ -n "$browser" ] || { echo "no Chromium: apt-get install -y chromium" >&2; exit 2; }
flags=(--headless=new --no-sandbox --disable-gpu --window-size=1200,2400 --disable-background-networking)
dom=$("$browser" "${flags[@]}" --dump-dom "file://$(realpath "$page")" 2>/dev/null)
for section in "Curves" "Held-out eval" "Sample completions"; do
  grep -q "$section" <<<"$dom" || { echo "report did not render its '$section' section" >&2; exit 1; }
done
grep -q "<svg" <<<"$dom" || { echo "report rendered no charts" >&2; exit 1; }
"$browser" "${flags[@]}" --screenshot="$shot" "file://$(realpath "$page")" >/dev/null 2>&1
[ -s "$shot" ] || { echo "no screenshot written" >&2; exit 1; }
echo "report renders: sections and charts present; screenshot $shot"
