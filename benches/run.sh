#!/usr/bin/env bash
# Whole-process benchmarks of scimsync, each next to its baseline measured in the same run; prints
# a Markdown table (benches/README.md explains the rows and records results).
#
#   benches/run.sh            10k, 100k and 1M users (about 15 minutes on 2 cores, ~3 GB of disk)
#   benches/run.sh --smoke    the same steps at 2,000 users on the debug build, under a minute once
#                             built: checks the machinery and the no-change guarantees (CI runs it)
#
# Environment: CARGO_TARGET_DIR, BENCH_PROFILE (release, or debug for --smoke), BENCH_WORK (generated data and databases,
# default benches/.work), BENCH_SIZES (user counts), SCIM2_SERVER_BIN (default .venv/bin/scim2-server;
# the apply rows against it are skipped when it is missing), BENCH_SEED.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
SMOKE=
[[ ${1:-} == --smoke ]] && SMOKE=1

if [[ -n $SMOKE ]]; then
    SIZES=${BENCH_SIZES:-2000}
    APPLY_LOOPBACK=500
    APPLY_SCIM=200 # replaced by the number of users wrk created
    WRK_SECONDS=2
else
    SIZES=${BENCH_SIZES:-10000 100000 1000000}
    APPLY_LOOPBACK=20000
    APPLY_SCIM=3000 # replaced by the number of users wrk created
    WRK_SECONDS=10
fi
SEED=${BENCH_SEED:-7}
NGROUPS=200
WORK=${BENCH_WORK:-$ROOT/benches/.work}
mkdir -p "$WORK"
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
PROFILE=${BENCH_PROFILE:-$([[ -n $SMOKE ]] && echo debug || echo release)}
BIN=$TARGET/$PROFILE
CFG=$ROOT/benches/bench.toml
export BENCH_SCIM_TOKEN=bench-token-$$

log() { printf '==> %s\n' "$*" >&2; }

if [[ $PROFILE == release ]]; then
    log "cargo build --release --bins"
    cargo build --release --bins -q
else
    log "cargo build --bins"
    cargo build --bins -q
fi

ROWS=()
row() { ROWS+=("| $1 | $2 | $3 | $4 |"); }

# measure OUTFILE CMD...: runs CMD with stdout to OUTFILE; sets WALL, CPU (user+sys, s) and RSS_MB.
have_time=
[[ -x /usr/bin/time ]] && have_time=1
measure() {
    local out=$1
    shift
    if [[ -n $have_time ]]; then
        /usr/bin/time -f '%e %U %S %M' -o "$WORK/time.txt" "$@" >"$out"
        read -r WALL user sys rss <"$WORK/time.txt"
        CPU=$(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%.2f", u + s }')
        RSS_MB=$((rss / 1024))
    else
        local t0 t1
        t0=$(date +%s.%N)
        "$@" >"$out"
        t1=$(date +%s.%N)
        WALL=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
        CPU=n/a
        RSS_MB=n/a
    fi
}
# best_of N OUTFILE CMD...: measure N times; WALL is the shortest run's (a run slowed by other jobs
# says nothing about the program), CPU and RSS_MB the last run's.
best_of() {
    local n=$1 best= i
    shift
    for ((i = 0; i < n; i++)); do
        measure "$@"
        if [[ -z $best ]] || awk -v a="$WALL" -v b="$best" 'BEGIN { exit !(a < b) }'; then best=$WALL; fi
    done
    WALL=$best
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "n/a"; else printf "%.1f", a / b }'; }
# A `name=value` field of a helper's one-line output.
field() { sed -n "s/.*\b$1=\([0-9.]*\).*/\1/p" "$2"; }
mb() { awk -v b="$(stat -c %s "$1")" 'BEGIN { printf "%.0f", b / 1e6 }'; }
human() {
    awk -v n="$1" 'BEGIN { if (n >= 1e6) printf "%gM", n / 1e6; else if (n >= 1e3) printf "%gk", n / 1e3; else print n }'
}

# state_digest DB: snapshot version, audit rows, users' summed updated_at: any rewritten row shows.
state_digest() {
    python3 - "$1" <<'EOF'
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
v = c.execute("SELECT value FROM meta WHERE key = 'snapshot_version'").fetchone()[0]
a = c.execute("SELECT count(*) FROM audit").fetchone()[0]
u = c.execute("SELECT count(*), coalesce(sum(updated_at), 0) FROM users").fetchone()
print(f"v{v}-a{a}-u{u[0]}-{u[1]}")
EOF
}
stats() { python3 -c "import urllib.request,sys; print(urllib.request.urlopen(sys.argv[1]).read().decode())" "$1"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() {
    local url=$1 i
    for i in $(seq 1 200); do
        python3 -c "import urllib.request,sys; urllib.request.urlopen(urllib.request.Request(sys.argv[1], headers={'Authorization': 'Bearer $BENCH_SCIM_TOKEN'}), timeout=1)" "$url" 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

# --- Data -------------------------------------------------------------------------------------
for n in $SIZES; do
    if [[ ! -s $WORK/u$n.ldif || ! -s $WORK/u$n-c1.ldif ]]; then
        log "generating $n users, $NGROUPS groups (and the 1% changed copy)"
        "$BIN/scimsync-gen" --users "$n" --groups "$NGROUPS" --seed "$SEED" -o "$WORK/u$n.ldif"
        "$BIN/scimsync-gen" --users "$n" --groups "$NGROUPS" --seed "$SEED" --change 1 -o "$WORK/u$n-c1.ldif"
    fi
done
LARGEST=${SIZES##* }
BIG=$WORK/u$LARGEST.ldif

# --- LDIF parse -------------------------------------------------------------------------------
log "LDIF parse over $(mb "$BIG") MB"
cat "$BIG" >/dev/null # into the page cache, for every reader alike
# The best of five runs each: wc -l takes 0.04-0.1 s and /usr/bin/time reports hundredths, so a
# single run's figure is mostly noise.
best_of 5 "$WORK/wc.out" wc -l "$BIG"
WC_WALL=$WALL
best_of 5 "$WORK/parse.out" "$BIN/scimsync-bench" parse "$BIG"
PARSE_WALL=$WALL
mbs() { awk -v b="$(stat -c %s "$BIG")" -v t="$1" 'BEGIN { printf "%.0f", b / 1e6 / t }'; }
row "LDIF parse, $(mb "$BIG") MB ($(human "$LARGEST") users), every value handed out (one thread; best of 5)" "$PARSE_WALL s = $(mbs "$PARSE_WALL") MB/s, $RSS_MB MB RSS" "wc -l (best of 5): $WC_WALL s" "$(ratio "$PARSE_WALL" "$WC_WALL")× wc -l"
best_of 5 "$WORK/parse-parts.out" "$BIN/scimsync-bench" parse "$BIG" --parts
row "the same in parts, one per core, as scimsync reads a large export (best of 5)" "$WALL s = $(mbs "$WALL") MB/s, $RSS_MB MB RSS" "wc -l (best of 5): $WC_WALL s" "$(ratio "$WALL" "$WC_WALL")× wc -l"
PY=$ROOT/benches/.venv/bin/python
declare -A PY_WALL=()
if [[ ! -x $PY && -z $SMOKE ]]; then
    log "creating benches/.venv with PyPI ldif 4.3 (the Python baseline)"
    python3 -m venv "$ROOT/benches/.venv" && "$PY" -m pip install -q --disable-pip-version-check ldif==4.3
fi
if [[ -x $PY ]] && "$PY" -c 'import ldif' 2>/dev/null; then
    measure "$WORK/py.out" "$PY" "$ROOT/benches/python_ldif.py" "$BIG"
    row "Python ldif 4.3 over the same file" "$WALL s" "scimsync: $PARSE_WALL s" "scimsync $(ratio "$WALL" "$PARSE_WALL")× faster"
fi

# --- First plan (empty snapshot) as JSON and as text, beside Python merely parsing the file ------
for n in $SIZES; do
    db=$WORK/first$n.db
    export SCIMSYNC_SOURCE__PATH=$WORK/u$n.ldif SCIMSYNC_STATE__PATH=$db
    for format in json text; do
        rm -f "$db" "$db-wal" "$db-shm"
        log "$n users: first plan as $format"
        measure "$WORK/first-$format.out" "$BIN/scimsync" --config "$CFG" plan --format "$format"
        FIRST_WALL=$WALL
        detail=""
        if [[ -x $PY ]] && "$PY" -c 'import ldif' 2>/dev/null && ((n <= 200000)); then
            [[ -n ${PY_WALL[$n]:-} ]] || {
                measure "$WORK/py$n.out" "$PY" "$ROOT/benches/python_ldif.py" "$WORK/u$n.ldif"
                PY_WALL[$n]=$WALL
            }
            detail="Python ldif parsing the file: ${PY_WALL[$n]} s; scimsync $(ratio "${PY_WALL[$n]}" "$FIRST_WALL")× faster"
        fi
        row "first plan (empty snapshot) as $format, $(human "$n") users, $(mb "$WORK/first-$format.out") MB written" "$FIRST_WALL s wall, $CPU s CPU, $RSS_MB MB RSS" "$detail" ""
    done
    rm -f "$db" "$db-wal" "$db-shm"
done

# --- Plan: snapshot write, no change, 1% change --------------------------------------------------
for n in $SIZES; do
    db=$WORK/s$n.db
    rm -f "$db" "$db-wal" "$db-shm"
    export SCIMSYNC_SOURCE__PATH=$WORK/u$n.ldif SCIMSYNC_STATE__PATH=$db
    log "$n users: first snapshot write"
    measure "$WORK/fill.out" "$BIN/scimsync-bench" fill --config "$CFG"
    commit=$(field commit_s "$WORK/fill.out")
    ops=$(field ops "$WORK/fill.out")
    row "first snapshot write, $(human "$n") users ($ops ops, Store::commit_ops, one transaction)" "$commit s ($(field commit_cpu_s "$WORK/fill.out") s CPU, $(field written_mb "$WORK/fill.out") MB written)" "whole fill: $WALL s, $RSS_MB MB RSS; database $(mb "$db") MB" ""
    if [[ $n == "$LARGEST" ]]; then
        # The same write in transactions of 10,000 operations (into a fresh database; the one
        # filled above is what the plans below run against).
        rm -f "$db.b" "$db.b-wal" "$db.b-shm"
        SCIMSYNC_STATE__PATH=$db.b measure "$WORK/fill-b.out" "$BIN/scimsync-bench" fill --config "$CFG" --batch 10000
        row "first snapshot write, $(human "$n") users, 10,000 operations per transaction" "$(field commit_s "$WORK/fill-b.out") s ($(field commit_cpu_s "$WORK/fill-b.out") s CPU, $(field written_mb "$WORK/fill-b.out") MB written)" "whole fill: $WALL s, $RSS_MB MB RSS" ""
        rm -f "$db.b" "$db.b-wal" "$db.b-shm"
    fi
    log "$n users: plan with no change"
    before=$(state_digest "$db")
    measure "$WORK/plan.out" "$BIN/scimsync" --config "$CFG" plan
    grep -q 'No changes' "$WORK/plan.out" || {
        cat "$WORK/plan.out" >&2
        echo "error: a plan right after the fill has changes" >&2
        exit 1
    }
    row "plan, no change, $(human "$n") users" "$WALL s wall, $CPU s CPU, $RSS_MB MB RSS" "" ""
    log "$n users: plan with 1% changes"
    export SCIMSYNC_SOURCE__PATH=$WORK/u$n-c1.ldif
    measure "$WORK/plan1.out" "$BIN/scimsync" --config "$CFG" plan
    summary=$(grep '^Plan:' "$WORK/plan1.out" | cut -d';' -f1 | sed 's/^Plan: //')
    row "plan, 1% changes, $(human "$n") users ($summary)" "$WALL s wall, $CPU s CPU, $RSS_MB MB RSS" "" ""
    [[ $(state_digest "$db") == "$before" ]] || {
        echo "error: plan changed the snapshot" >&2
        exit 1
    }
done

# --- Sync with no change, against the loopback stand-in ---------------------------------------
start_loopback() {
    LOOP_PORT=$(free_port)
    "$BIN/scimsync-bench" loopback --port "$LOOP_PORT" --max-seconds 3600 >"$WORK/loopback.log" 2>&1 &
    PIDS+=($!)
    wait_http "http://127.0.0.1:$LOOP_PORT/__stats"
    export SCIMSYNC_TARGET__URL=http://127.0.0.1:$LOOP_PORT/v2
}
start_loopback
n=$LARGEST
export SCIMSYNC_SOURCE__PATH=$WORK/u$n.ldif SCIMSYNC_STATE__PATH=$WORK/s$n.db
before=$(state_digest "$WORK/s$n.db")
log "$n users: sync with no change (loopback target)"
measure "$WORK/sync0.out" "$BIN/scimsync" --config "$CFG" sync
after=$(state_digest "$WORK/s$n.db")
requests=$(stats "http://127.0.0.1:$LOOP_PORT/__stats")
rewritten=same
[[ ${before#*-a} == "${after#*-a}" ]] || rewritten="CHANGED ($before → $after)"
[[ $requests == '{"post":0,"patch":0,"delete":0,"get":0}' && $rewritten == same ]] || {
    echo "error: a sync with no change sent requests ($requests) or rewrote rows ($rewritten)" >&2
    exit 1
}
row "sync, no change, $(human "$n") users" "$WALL s wall, $CPU s CPU, $RSS_MB MB RSS" "requests: $requests; audit and user rows: $rewritten" ""

# --- Apply ---------------------------------------------------------------------------------------
# Users only: creates are what the target's own rate is measured on (wrk POSTs users), and a
# membership PATCH costs scim2-server far more than a create.
apply_data() { # USERS → $WORK/a$USERS.ldif
    [[ -s $WORK/u$1-only.ldif ]] || "$BIN/scimsync-gen" --users "$1" --groups 0 --seed "$SEED" -o "$WORK/u$1-only.ldif"
}
apply_data "$APPLY_LOOPBACK"
db=$WORK/apply-loop.db
rm -f "$db" "$db-wal" "$db-shm"
export SCIMSYNC_SOURCE__PATH=$WORK/u$APPLY_LOOPBACK-only.ldif SCIMSYNC_STATE__PATH=$db
log "apply $APPLY_LOOPBACK users to the loopback stand-in"
measure "$WORK/apply-loop.out" "$BIN/scimsync" --config "$CFG" sync
applied=$(sed -n 's/^run [0-9]*: target confirmed \([0-9]*\) of.*/\1/p' "$WORK/apply-loop.out")
per_op=$(awk -v c="$CPU" -v n="$applied" 'BEGIN { printf "%.3f", c * 1000 / n }')
row "sync to the loopback stand-in, $(human "$APPLY_LOOPBACK") users ($applied ops)" "$per_op ms CPU per op (whole process)" "$(awk -v n="$applied" -v t="$WALL" 'BEGIN { printf "%.0f", n / t }') ops/s, $WALL s wall" ""

SCIM_BIN=${SCIM2_SERVER_BIN:-$ROOT/.venv/bin/scim2-server}
# scim2-server slows down as it fills (about 395 creates/s empty, 300/s at 8,000 users here), so
# wrk and scimsync each start from an empty server and create the same number of users: wrk runs
# for WRK_SECONDS, and the sync then creates as many users as wrk did. The machine's speed drifts,
# so wrk runs again after the sync and the sync is compared with the mean of the two.
start_scim() { # → SCIM_PORT, SCIM_PID
    SCIM_PORT=$(free_port)
    "$SCIM_BIN" --hostname 127.0.0.1 --port "$SCIM_PORT" --bearer-token "$BENCH_SCIM_TOKEN" \
        --schema "$ROOT/tests/data/scim/schemas.json" --resource-type "$ROOT/tests/data/scim/resource-types.json" \
        >>"$WORK/scim2.log" 2>&1 &
    SCIM_PID=$!
    PIDS+=($!)
    wait_http "http://127.0.0.1:$SCIM_PORT/v2/ServiceProviderConfig"
}
# The server's CPU seconds so far (it is single-threaded: busy share = CPU time / wall time).
scim_cpu() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$SCIM_PID/stat"; }
now() { date +%s.%N; }
busy() { awk -v c0="$1" -v c1="$2" -v t0="$3" -v t1="$4" 'BEGIN { printf "%.0f", (c1 - c0) * 100 / (t1 - t0) }'; }
wrk_creates() { # OUT → WRK_RATE, WRK_CREATED, WRK_NON2XX, WRK_BUSY
    start_scim
    local c0 t0
    c0=$(scim_cpu) t0=$(now)
    TOKEN=$BENCH_SCIM_TOKEN wrk -t 2 -c 8 -d "${WRK_SECONDS}s" -s "$ROOT/benches/wrk-create.lua" \
        "http://127.0.0.1:$SCIM_PORT/v2/Users" >"$1" 2>&1
    WRK_BUSY=$(busy "$c0" "$(scim_cpu)" "$t0" "$(now)")
    kill "$SCIM_PID"
    WRK_RATE=$(awk '/^Requests\/sec/ { printf "%.0f", $2 }' "$1")
    WRK_NON2XX=$(awk '/Non-2xx/ { print $NF }' "$1")
    WRK_CREATED=$(awk -v bad="${WRK_NON2XX:-0}" '/ requests in / { print $1 - bad }' "$1")
}
if [[ -x $SCIM_BIN ]] && command -v wrk >/dev/null; then
    : >"$WORK/scim2.log"
    log "scim2-server's own create rate (wrk, $WRK_SECONDS s, from an empty server)"
    wrk_creates "$WORK/wrk.out"
    wrk_before=$WRK_RATE wrk_non2xx=$WRK_NON2XX
    APPLY_SCIM=${WRK_CREATED:-$APPLY_SCIM}
    apply_data "$APPLY_SCIM"
    start_scim
    db=$WORK/apply-scim.db
    rm -f "$db" "$db-wal" "$db-shm"
    export SCIMSYNC_SOURCE__PATH=$WORK/u$APPLY_SCIM-only.ldif SCIMSYNC_STATE__PATH=$db
    export SCIMSYNC_TARGET__URL=http://127.0.0.1:$SCIM_PORT/v2
    log "apply $APPLY_SCIM users to scim2-server (as many as wrk created), from an empty server"
    c0=$(scim_cpu) t0=$(now)
    measure "$WORK/apply-scim.out" "$BIN/scimsync" --config "$CFG" sync
    sync_busy=$(busy "$c0" "$(scim_cpu)" "$t0" "$(now)")
    kill "$SCIM_PID"
    wrk_busy_before=$WRK_BUSY
    log "scim2-server's own create rate again"
    wrk_creates "$WORK/wrk2.out"
    wrk_rate=$(awk -v a="$wrk_before" -v b="$WRK_RATE" 'BEGIN { printf "%.0f", (a + b) / 2 }')
    applied=$(sed -n 's/^run [0-9]*: target confirmed \([0-9]*\) of.*/\1/p' "$WORK/apply-scim.out")
    rate=$(awk -v n="$applied" -v t="$WALL" 'BEGIN { printf "%.0f", n / t }')
    row "sync to scim2-server, $(human "$APPLY_SCIM") users ($applied ops)" "$rate ops/s ($WALL s wall, $CPU s CPU)" "wrk POST /Users before and after: $wrk_before/s, $WRK_RATE/s${wrk_non2xx:+ ($wrk_non2xx non-2xx)}" "$(awk -v a="$rate" -v b="$wrk_rate" 'BEGIN { if (b > 0) printf "%.0f%%", a * 100 / b; else print "n/a" }') of the server's max (mean of the two)"
    # The same comparison made within each window, immune to the machine's speed drifting between
    # them: how busy the server was kept (its CPU time per wall time).
    row "scim2-server kept busy (its CPU time / wall time)" "during the sync (whole process): $sync_busy%" "under wrk: $wrk_busy_before%, $WRK_BUSY%" "$(awk -v a="$sync_busy" -v b="$wrk_busy_before" -v c="$WRK_BUSY" 'BEGIN { printf "%.0f%%", a * 200 / (b + c) }') of wrk's"
else
    log "scim2-server or wrk missing: the apply rows against scim2-server are skipped"
fi

# --- Table ---------------------------------------------------------------------------------------
echo
echo "machine: $(nproc) cores, $PROFILE build, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| measurement | scimsync | baseline / detail | ratio |"
echo "|---|---|---|---|"
printf '%s\n' "${ROWS[@]}"
