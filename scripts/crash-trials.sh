#!/usr/bin/env bash
# Long crash trials: SIGKILL `scimsync sync` at random moments during provisioning, updates and
# deprovisioning against scim2-server, then check the next sync converges (tests/crash.rs).
#   scripts/crash-trials.sh [TRIALS_PER_SCENARIO] [USERS]      default: 170 × 3 scenarios, 300 users
# Prints the tally; exits non-zero if any trial failed. Needs what scripts/test.sh installs.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
trials=${1:-170}
users=${2:-300}
seed=${CRASH_SEED:-$((RANDOM * 32768 + RANDOM))}
log=$(mktemp)
start=$SECONDS
echo "crash trials: $trials per scenario, $users users, first seed $seed"
status=0
CRASH_TRIALS=$trials CRASH_USERS=$users CRASH_SEED=$seed \
    cargo test --quiet --test suite -- --nocapture --test-threads 1 crash:: >"$log" 2>&1 || status=$?
grep -E '^crash trials:|test result|panicked|FAILED' "$log" || true
echo "elapsed: $((SECONDS - start)) s (full output: $log)"
exit "$status"
