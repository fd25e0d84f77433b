#!/usr/bin/env bash
# A whole initial provision of 5,000 users through the fault-injecting proxy (about a quarter of
# the requests answered with 429, 5xx, resets, 2-second stalls or cut bodies); prints the tally.
#   scripts/fault-storm.sh [USERS]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
log=$(mktemp)
status=0
FAULT_STORM_USERS=${1:-5000} cargo test --quiet --test suite -- --nocapture sync_faults::fault_storm >"$log" 2>&1 || status=$?
grep -E '^fault storm:|test result|panicked' "$log" || true
exit "$status"
