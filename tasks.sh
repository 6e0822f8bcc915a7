#!/usr/bin/env bash
# One entry point for a fresh clone:  ./tasks.sh demo   |   ./tasks.sh test   |   ./tasks.sh setup
set -euo pipefail
cd "$(dirname "$0")"

setup() {
  if [ ! -x .venv/bin/python ]; then python3 -m venv .venv; fi
  .venv/bin/python -m pip install -q --upgrade pip
  # constraints.txt holds the versions mediapipe 0.10.21 forces (numpy<2, protobuf<5) and the CPU torch
  .venv/bin/python -m pip install -q -c constraints.txt -e ".[test,train]"
}

case "${1:-}" in
  setup) setup ;;
  demo) setup; .venv/bin/tiltwatch analyze sample --out out/sample --overwrite ;;
  test) setup; .venv/bin/python -m pytest ;;
  *) echo "usage: ./tasks.sh setup|demo|test" >&2; exit 2 ;;
esac
