#!/usr/bin/env bash
# System packages the test suite needs: Debian's chromium for the browser tests (Playwright
# drives it; no browser is downloaded). Installs only what is missing; uses sudo when not root.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq chromium >/dev/null
command -v chromium
