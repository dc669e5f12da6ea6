#!/usr/bin/env bash
# Installs what Ponder needs on a fresh Debian/Ubuntu machine: OpenBLAS (opened at run time, its
# header used at build time). Does nothing when it is already there.
set -euo pipefail
if [ -e /usr/include/x86_64-linux-gnu/cblas.h ] || [ -e /usr/include/cblas.h ] || [ -e /usr/include/aarch64-linux-gnu/cblas.h ]; then
  if ldconfig -p 2>/dev/null | grep -q 'libopenblas.so.0'; then exit 0; fi
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
echo "Installing libopenblas-dev…" >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq libopenblas-dev >/dev/null
