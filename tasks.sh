#!/usr/bin/env bash
# One entry point for a fresh clone:  ./tasks.sh demo   |   ./tasks.sh test   |   ./tasks.sh lint   |   ./tasks.sh setup
set -euo pipefail
cd "$(dirname "$0")"

setup() {
  if [ ! -x .venv/bin/python ]; then python3 -m venv .venv; fi
  .venv/bin/python -m pip install -q --upgrade pip
  # constraints.txt holds the versions mediapipe 0.10.21 forces (numpy<2, protobuf<5) and the CPU torch
  .venv/bin/python -m pip install -q -c constraints.txt -e ".[test,train,cluster,heic]"
}

browser() {
  # the dashboard's tests drive a real headless Chromium (Debian's build and its driver)
  if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then return; fi
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
  else
    echo "note: chromium/chromedriver missing and not root: the browser tests will be skipped" >&2
  fi
}

case "${1:-}" in
  setup) setup ;;
  demo) setup; .venv/bin/tiltwatch analyze sample --out out/sample --overwrite ;;
  test) setup; browser; .venv/bin/python -m pytest ;;
  lint) setup; .venv/bin/ruff check tiltwatch tests scripts; .venv/bin/ruff format --check tiltwatch tests scripts ;;
  *) echo "usage: ./tasks.sh setup|demo|test|lint" >&2; exit 2 ;;
esac
