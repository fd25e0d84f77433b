#!/usr/bin/env bash
# The live LDAP read of scimsync against `ldapsearch` making the same searches, in the same run,
# on a throwaway OpenLDAP slapd; prints a Markdown table (benches/README.md, "Live LDAP read").
#
#   benches/ldap.sh           100,000 users, 3 runs of each, alternating (release build)
#   benches/ldap.sh --smoke   10,000 users, 1 run of each (debug build): checks the machinery, well
#                             under a minute once built
#
# What is timed, each as a whole process (`/usr/bin/time`: wall seconds, peak RSS):
#   ldapsearch   the user and the group search `scimsync-bench read-source --searches` prints (the
#                filters, attributes and page size scimsync sends), output to /dev/null
#   ldap read    `scimsync-bench read-source`: scimsync's live read (bind, paged searches, the
#                directory interpretation), no mapping or planning
#   ldif read    the same over the slapcat export of the same directory
#   ldap plan    `scimsync plan` from the live directory against a snapshot filled from the export
#                (no change), and `ldif plan` from the export: the LDAP path's cost in a whole run
#
# Environment: SLAPD_BIN, SLAPADD_BIN, SLAPCAT_BIN, LDAPSEARCH_BIN (else PATH, /usr/sbin),
# CARGO_TARGET_DIR, BENCH_PROFILE (release, or debug for --smoke), BENCH_WORK (default
# benches/.work), BENCH_LDAP_USERS, BENCH_RUNS, BENCH_SEED.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
SMOKE=
[[ ${1:-} == --smoke ]] && SMOKE=1

if [[ -n $SMOKE ]]; then
    USERS=${BENCH_LDAP_USERS:-10000}
    RUNS=${BENCH_RUNS:-1}
else
    USERS=${BENCH_LDAP_USERS:-100000}
    RUNS=${BENCH_RUNS:-3}
fi
SEED=${BENCH_SEED:-7}
NGROUPS=200
PAGE_SIZE=1000
SUFFIX=dc=example,dc=com
ROOTDN=cn=admin,dc=example,dc=com
ROOTPW=secret
WORK=${BENCH_WORK:-$ROOT/benches/.work}
mkdir -p "$WORK"
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
PROFILE=${BENCH_PROFILE:-$([[ -n $SMOKE ]] && echo debug || echo release)}
BIN=$TARGET/$PROFILE
CFG=$ROOT/benches/bench.toml
export BENCH_SCIM_TOKEN=bench-token-$$
# The client tools must not read /etc/ldap/ldap.conf or ~/.ldaprc.
export LDAPNOINIT=1

log() { printf '==> %s\n' "$*" >&2; }
die() {
    printf 'ldap.sh: error: %s\n' "$*" >&2
    exit 1
}

source "$ROOT/scripts/lib.sh"
# find_prog VAR NAME: the program (`prog_path`), or a clear stop.
find_prog() {
    prog_path "$2" "$1" || die "'$2' not found (\$$1, PATH, /usr/sbin) or \$$1 is not an executable: run scripts/test.sh, which installs slapd and ldap-utils"
}
SLAPD=$(find_prog SLAPD_BIN slapd)
SLAPADD=$(find_prog SLAPADD_BIN slapadd)
SLAPCAT=$(find_prog SLAPCAT_BIN slapcat)
LDAPSEARCH=$(find_prog LDAPSEARCH_BIN ldapsearch)
[[ -x /usr/bin/time ]] || die "/usr/bin/time is needed (Debian: apt-get install time)"
first_dir() {
    local d
    for d in "$@"; do [[ -d $d ]] && {
        printf '%s\n' "$d"
        return
    }; done
    return 0
}
SCHEMA_DIR=$(first_dir /etc/ldap/schema /etc/openldap/schema /usr/local/etc/openldap/schema)
[[ -n $SCHEMA_DIR ]] || die "OpenLDAP schema directory not found"
MODULE_DIR=$(first_dir /usr/lib/ldap /usr/lib64/openldap /usr/lib/openldap /usr/libexec/openldap)

if [[ $PROFILE == release ]]; then
    log "cargo build --release --bins"
    cargo build --release --bins -q
else
    log "cargo build --bins"
    cargo build --bins -q
fi

# measure OUTFILE CMD...: runs CMD with stdout to OUTFILE; sets WALL (s) and RSS_MB.
measure() {
    local out=$1
    shift
    /usr/bin/time -f '%e %M' -o "$WORK/time.txt" "$@" >"$out"
    read -r WALL rss <"$WORK/time.txt"
    RSS_MB=$((rss / 1024))
}
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "n/a"; else printf "%.2f", a / b }'; }
field() { sed -n "s/.*\b$1=\([0-9.]*\).*/\1/p" "$2"; }
human() { awk -v n="$1" 'BEGIN { if (n >= 1e6) printf "%gM", n / 1e6; else if (n >= 1e3) printf "%gk", n / 1e3; else print n }'; }

L=$WORK/ldap$USERS
SLAPD_PID=
stop_slapd() {
    [[ -n $SLAPD_PID ]] || return 0
    stop_pid "$SLAPD_PID"
    SLAPD_PID=
}
cleanup() {
    local status=$?
    stop_slapd
    rm -rf "$L/db"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- The directory, loaded offline --------------------------------------------------------------
mkdir -p "$L"
INPUT=$WORK/u$USERS.ldif
if [[ ! -s $INPUT ]]; then
    log "generating $USERS users, $NGROUPS groups"
    "$BIN/scimsync-gen" --users "$USERS" --groups "$NGROUPS" --seed "$SEED" -o "$INPUT"
fi
rm -rf "$L/db"
mkdir "$L/db"
{
    for s in core cosine inetorgperson nis; do printf 'include %s/%s.schema\n' "$SCHEMA_DIR" "$s"; done
    printf 'pidfile %s/slapd.pid\nargsfile %s/slapd.args\n' "$L" "$L"
    if [[ -n $MODULE_DIR ]] && [[ -e $MODULE_DIR/back_mdb.la || -e $MODULE_DIR/back_mdb.so ]]; then
        printf 'modulepath %s\nmoduleload back_mdb\n' "$MODULE_DIR"
    fi
    printf 'database mdb\nmaxsize 4294967296\nsuffix "%s"\nrootdn "%s"\nrootpw %s\ndirectory %s/db\n' \
        "$SUFFIX" "$ROOTDN" "$ROOTPW" "$L"
    printf 'index objectClass eq\n'
} >"$L/slapd.conf"
log "slapadd $USERS users (mdb, index objectClass eq)"
# slapadd 2.5 takes the `version: 1` line for an entry without a DN.
sed '/^version: 1$/d' "$INPUT" >"$L/input.ldif"
"$SLAPADD" -q -f "$L/slapd.conf" -l "$L/input.ldif" >"$L/slapadd.log" 2>&1 ||
    die "slapadd could not load $INPUT: $(tail -5 "$L/slapadd.log")"
rm -f "$L/input.ldif"
# The LDIF path reads the export of this same directory (slapadd adds the operational attributes).
"$SLAPCAT" -f "$L/slapd.conf" -l "$L/slapcat.ldif" >"$L/slapcat.log" 2>&1 ||
    die "slapcat failed: $(cat "$L/slapcat.log")"

# --- slapd on a random loopback port ------------------------------------------------------------
URL=
for attempt in 1 2 3 4 5 6 7 8 9 10; do
    port=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
    try_url=ldap://127.0.0.1:$port
    "$SLAPD" -f "$L/slapd.conf" -h "$try_url/" -d none >"$L/slapd.log" 2>&1 &
    SLAPD_PID=$!
    for _ in $(seq 200); do
        kill -0 "$SLAPD_PID" 2>/dev/null || break
        if "$LDAPSEARCH" -x -H "$try_url" -b "" -s base -LLL 1.1 >/dev/null 2>&1; then
            URL=$try_url
            break 2
        fi
        sleep 0.05
    done
    kill -0 "$SLAPD_PID" 2>/dev/null && die "slapd on $try_url did not answer within 10 s: $(cat "$L/slapd.log")"
    wait "$SLAPD_PID" 2>/dev/null || true
    SLAPD_PID=
    grep -q 'Address already in use' "$L/slapd.log" || die "slapd failed to start: $(cat "$L/slapd.log")"
done
[[ -n $URL ]] || die "no free loopback port found for slapd after 10 attempts"
log "slapd on $URL"

# --- Configurations: the bench mapping, the source live or the export -----------------------------
printf '%s' "$ROOTPW" >"$L/password" # ldapsearch -y sends the file whole: no line break
chmod 600 "$L/password"
rest=$(sed -n '/^\[target\]/,$p' "$CFG")
cat >"$L/ldap.toml" <<EOF
[source]
kind = "ldap"
url = "$URL"
bind_dn = "$ROOTDN"
password_file = "$L/password"
base_dn = "$SUFFIX"
page_size = $PAGE_SIZE

$rest
EOF
cat >"$L/ldif.toml" <<EOF
[source]
kind = "ldif"
path = "$L/slapcat.ldif"

$rest
EOF
sed -i "s|^path = \"unset.db\"|path = \"$L/state.db\"|" "$L/ldap.toml" "$L/ldif.toml"
grep -q "$L/state.db" "$L/ldap.toml" || die "benches/bench.toml has no [state] path = \"unset.db\" to replace"

# The searches scimsync makes, as ldapsearch command lines (filters, attributes, page size).
"$BIN/scimsync-bench" read-source "$L/ldap.toml" --searches >"$L/searches.txt"
[[ $(wc -l <"$L/searches.txt") == 2 ]] || die "expected a user and a group search: $(cat "$L/searches.txt")"
grep -q "pr=$PAGE_SIZE/noprompt" "$L/searches.txt" || die "the searches are not paged: $(cat "$L/searches.txt")"
{
    echo 'set -eo pipefail'
    sed "s|^ldapsearch |\"\$LDAPSEARCH\" |; s|\$| >/dev/null|" "$L/searches.txt"
} >"$L/ldapsearch.sh"
export LDAPSEARCH
log "searches: $(tr '\n' ' ' <"$L/searches.txt" | sed "s|$L/||g")"

# The snapshot the plans run against: filled from the export, so a plan from either source finds
# no change.
rm -f "$L/state.db" "$L/state.db-wal" "$L/state.db-shm"
log "filling the snapshot from the export"
"$BIN/scimsync-bench" fill --config "$L/ldif.toml" >"$L/fill.out"

# --- Alternating runs -------------------------------------------------------------------------
declare -a W_SEARCH=() W_LREAD=() W_FREAD=() W_LPLAN=() W_FPLAN=()
R_SEARCH=0 R_LREAD=0 R_FREAD=0 R_LPLAN=0 R_FPLAN=0
max() { ((${!1} >= $2)) || printf -v "$1" '%s' "$2"; }
for ((i = 1; i <= RUNS; i++)); do
    log "run $i of $RUNS"
    measure "$L/search.out" bash "$L/ldapsearch.sh"
    W_SEARCH+=("$WALL") && max R_SEARCH "$RSS_MB"
    measure "$L/lread.out" "$BIN/scimsync-bench" read-source "$L/ldap.toml"
    W_LREAD+=("$WALL") && max R_LREAD "$RSS_MB"
    measure "$L/fread.out" "$BIN/scimsync-bench" read-source "$L/ldif.toml"
    W_FREAD+=("$WALL") && max R_FREAD "$RSS_MB"
    measure "$L/lplan.out" "$BIN/scimsync" --config "$L/ldap.toml" plan
    W_LPLAN+=("$WALL") && max R_LPLAN "$RSS_MB"
    measure "$L/fplan.out" "$BIN/scimsync" --config "$L/ldif.toml" plan
    W_FPLAN+=("$WALL") && max R_FPLAN "$RSS_MB"
done

# The two reads must agree (the export also holds the suffix and the OUs, which the live searches
# leave out), and a plan from either source find nothing to do.
lr=$(sed 's/^records=[0-9]* //; s/ secs=.*//' "$L/lread.out")
fr=$(sed 's/^records=[0-9]* //; s/ secs=.*//' "$L/fread.out")
[[ $lr == "$fr" ]] || die "the live read and the export's read differ: live $lr, export $fr"
for p in lplan fplan; do
    grep -q 'No changes' "$L/$p.out" || {
        cat "$L/$p.out" >&2
        die "the $p run found changes against a snapshot filled from the same directory"
    }
done

S=$(median "${W_SEARCH[@]}") LR=$(median "${W_LREAD[@]}") FR=$(median "${W_FREAD[@]}")
LP=$(median "${W_LPLAN[@]}") FP=$(median "${W_FPLAN[@]}")
records=$(field records "$L/lread.out")
users=$(field users "$L/lread.out")
groups=$(field groups "$L/lread.out")
rate=$(awk -v n="$records" -v t="$LR" 'BEGIN { printf "%.0f", n / t }')
runs() { local IFS=,; echo "$*" | sed 's/,/, /g'; }

echo
echo "machine: $(nproc) cores, $PROFILE build, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), load average $(cut -d' ' -f1-3 /proc/loadavg); $("$SLAPD" -VV 2>&1 | sed -n 's/.*\(slapd [^ ]*\).*/\1/p' | head -1)"
echo "directory: $(human "$USERS") users, $NGROUPS groups ($records entries read: $users users, $groups groups); page size $PAGE_SIZE; $RUNS runs of each, alternating; wall time is the median"
echo
echo "| measurement | wall (median) | runs | peak RSS | ratio |"
echo "|---|---|---|---|---|"
echo "| ldapsearch, the same two searches, to /dev/null | $S s | $(runs "${W_SEARCH[@]}") | $R_SEARCH MB | 1 |"
echo "| scimsync live LDAP read (read-source) | $LR s ($rate entries/s) | $(runs "${W_LREAD[@]}") | $R_LREAD MB | $(ratio "$LR" "$S")× ldapsearch |"
echo "| scimsync read of the slapcat export (read-source) | $FR s | $(runs "${W_FREAD[@]}") | $R_FREAD MB | live read $(ratio "$LR" "$FR")× this |"
echo "| plan, no change, from the live directory | $LP s | $(runs "${W_LPLAN[@]}") | $R_LPLAN MB | $(ratio "$LP" "$FP")× the export's plan; RSS $(ratio "$R_LPLAN" "$R_FPLAN")× |"
echo "| plan, no change, from the slapcat export | $FP s | $(runs "${W_FPLAN[@]}") | $R_FPLAN MB | 1 |"
