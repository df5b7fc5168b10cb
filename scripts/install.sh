#!/usr/bin/env bash
# Installs everything spl needs on a fresh Debian machine with Node 20, builds the workspace,
# and puts `spl` on the PATH. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v curl >/dev/null 2>&1 || need_apt+=(curl)
command -v jq >/dev/null 2>&1 || need_apt+=(jq)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "» installing ${need_apt[*]} (apt)"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if ! command -v pnpm >/dev/null 2>&1 || [ "$(pnpm --version 2>/dev/null)" != "10.34.9" ]; then
  echo "» installing pnpm 10.34.9"
  npm install -g pnpm@10.34.9 --silent
fi

export TURBO_TELEMETRY_DISABLED=1 DO_NOT_TRACK=1
echo "» installing dependencies (better-sqlite3 compiles from source: about a minute)"
if [ -f pnpm-lock.yaml ]; then pnpm install --frozen-lockfile; else pnpm install; fi
echo "» building"
pnpm build

bin_dir="$(npm prefix -g)/bin"
mkdir -p "$bin_dir"
chmod +x apps/cli/dist/bin.js
ln -sf "$PWD/apps/cli/dist/bin.js" "$bin_dir/spl"
echo "» spl is at $bin_dir/spl ($(spl version 2>/dev/null || echo 'not on PATH: add '"$bin_dir"' to PATH'))"
