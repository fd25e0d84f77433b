#!/usr/bin/env bash
# CI's short fuzzing run: builds the cargo-fuzz targets in fuzz/ and runs each for a few seconds
# from its seed corpus (fuzz/seeds/). A crash, panic, timeout or leak fails the script and leaves
# the input in fuzz/artifacts/<target>/. See fuzz/README.md for the long runs.
#
#   scripts/fuzz-smoke.sh [TARGET...]      all targets when none is named
#
# Environment:
#   FUZZ_SECONDS   seconds per target (default 20)
#   FUZZ_NICE      niceness of the build and the runs (default 19; the machine is shared)
#
# Not called by scripts/test.sh: a cold build of the fuzz crate takes 16-32 min on 2 cores (see
# fuzz/README.md), far over what the test command can spare; with a warm fuzz/target/ the whole
# run takes about 3 min.
#
# cargo-fuzz needs nightly-only flags (-Zsanitizer, -Cpasses=sancov-module); on a stable
# toolchain RUSTC_BOOTSTRAP=1 unlocks them, for this script's cargo calls only.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
FUZZ_SECONDS=${FUZZ_SECONDS:-20}
FUZZ_NICE=${FUZZ_NICE:-19}
ALL_TARGETS=(ldif csv_source json_source scim_response config directory store_codec)
CARGO_FUZZ_VERSION=0.13.2

log() { printf '==> %s\n' "$*" >&2; }

# The seed directory of a target: `directory` reads LDIF like `ldif`.
seeds_of() {
    case $1 in
        directory) echo fuzz/seeds/ldif ;;
        *) echo "fuzz/seeds/$1" ;;
    esac
}

command -v cargo >/dev/null || {
    echo "error: cargo is missing: install a Rust toolchain (rustup) first" >&2
    exit 1
}

if ! cargo fuzz --version >/dev/null 2>&1; then
    log "cargo-fuzz is missing: cargo install cargo-fuzz@$CARGO_FUZZ_VERSION --locked"
    if ! nice -n "$FUZZ_NICE" cargo install "cargo-fuzz@$CARGO_FUZZ_VERSION" --locked; then
        echo "SKIPPED: fuzz smoke run: cargo-fuzz is not installed and 'cargo install cargo-fuzz' failed (offline?); nothing was fuzzed" >&2
        exit 0
    fi
fi

export RUSTC_BOOTSTRAP=1
targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=("${ALL_TARGETS[@]}")

t0=$SECONDS
log "cargo fuzz build -O --debug-assertions (all targets)"
nice -n "$FUZZ_NICE" cargo fuzz build -O --debug-assertions
log "built in $((SECONDS - t0)) s"

failed=()
for t in "${targets[@]}"; do
    corpus=fuzz/corpus/$t
    mkdir -p "$corpus"
    log "fuzzing $t for $FUZZ_SECONDS s (corpus $corpus, seeds $(seeds_of "$t"))"
    # The first directory receives new inputs; the seeds are only read.
    if ! nice -n "$FUZZ_NICE" cargo fuzz run -O --debug-assertions "$t" "$corpus" "$(seeds_of "$t")" -- \
        -max_total_time="$FUZZ_SECONDS" -rss_limit_mb=2048 -max_len=65536 -timeout=10 \
        -print_final_stats=1 2>"fuzz/$t.smoke.log"; then
        tail -n 40 "fuzz/$t.smoke.log" >&2
        failed+=("$t")
        continue
    fi
    grep -E '^(stat::number_of_executed_units|Done )' "fuzz/$t.smoke.log" | tail -n 1 >&2 || true
done
rm -f fuzz/*.smoke.log

log "fuzz smoke run took $((SECONDS - t0)) s"
if [[ ${#failed[@]} -gt 0 ]]; then
    echo "error: fuzz target(s) failed: ${failed[*]}; the crashing inputs are in fuzz/artifacts/" >&2
    exit 1
fi
echo "fuzz smoke: ${#targets[@]} target(s) ran ${FUZZ_SECONDS} s each without a crash" >&2
