#!/usr/bin/env bash
# Checks the systemd unit of docs/deploy.md (the first ```ini block) with `systemd-analyze verify`,
# as the page shows it. Run by .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
awk '/^```ini$/ {on=1; next} on && /^```$/ {exit} on {print}' docs/deploy.md >"$dir/spl.service"
if [ ! -s "$dir/spl.service" ]; then
  echo "check-systemd-unit: no \`\`\`ini block in docs/deploy.md" >&2
  exit 1
fi
# verify prints problems (unknown keys, bad values, a missing executable) and exits non-zero on
# errors; warnings are failures here too.
out=$(systemd-analyze verify "$dir/spl.service" 2>&1 || echo "systemd-analyze verify exited $?")
if [ -n "$out" ]; then
  echo "$out" >&2
  echo "check-systemd-unit: docs/deploy.md's unit does not verify" >&2
  exit 1
fi
echo "systemd unit of docs/deploy.md: systemd-analyze verify ok"
