#!/usr/bin/env bash
# Set up a fresh machine: Debian packages (when root or sudo is available),
# then the Python package with its test dependencies, built from source.
set -euo pipefail
cd "$(dirname "$0")/.."

pkgs=$(grep -v '^\s*#' scripts/apt-packages.txt | tr '\n' ' ')
if command -v apt-get >/dev/null 2>&1; then
    SUDO=""
    [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && SUDO="sudo"
    if [ "$(id -u)" -eq 0 ] || [ -n "$SUDO" ]; then
        missing=""
        for p in $pkgs; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
        if [ -n "$missing" ]; then
            echo "setup: installing Debian packages:$missing"
            $SUDO apt-get update -qq
            DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing
        fi
    else
        echo "setup: not root and no sudo; make sure these Debian packages are installed: $pkgs" >&2
    fi
fi

PYTHON=${PYTHON:-python3}
$PYTHON -m pip install -q --upgrade pip >/dev/null 2>&1 || true
$PYTHON -m pip install -q -e ".[test]"
