#!/usr/bin/env bash
# `make bench`: install the peer tools from Debian packages when missing, then run all
# benchmarks (several minutes; `python bench/bench.py --quick` for a fast look).
set -euo pipefail
cd "$(dirname "$0")/.."
missing=()
for tool in rclone rsync curl b2sum; do
  command -v "$tool" >/dev/null || missing+=("$tool")
done
if [ ${#missing[@]} -gt 0 ]; then
  pkgs=$(printf '%s\n' "${missing[@]}" | sed 's/^b2sum$/coreutils/' | sort -u | tr '\n' ' ')
  echo "Installing $pkgs (Debian packages)"
  if [ "$(id -u)" -eq 0 ]; then apt-get update -qq && apt-get install -y -qq $pkgs
  else sudo apt-get update -qq && sudo apt-get install -y -qq $pkgs; fi
fi
exec .venv/bin/python bench/bench.py "$@"
