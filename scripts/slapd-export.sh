#!/usr/bin/env bash
# slapd-export.sh OUTDIR INPUT.ldif
#
# Loads INPUT.ldif into a throwaway OpenLDAP slapd (suffix dc=example,dc=com, rootdn
# cn=admin,dc=example,dc=com, password "secret", mdb database in a temporary directory under
# OUTDIR, listening on a free loopback port) and exports the directory three ways:
#
#   OUTDIR/slapcat.ldif               slapcat: every attribute, operational ones included
#   OUTDIR/ldapsearch.ldif            ldapsearch -LLL: user attributes + entryUUID, no comments
#   OUTDIR/ldapsearch-commented.ldif  ldapsearch without -LLL: "# ..." comments, "# search
#                                     result" trailer, paged-results cookie comments
#
# All three keep the tools' default line folding. slapd is stopped and its database removed
# before the script exits, also on failure. Programs are taken from SLAPD_BIN, SLAPADD_BIN,
# SLAPCAT_BIN and LDAPSEARCH_BIN when set, else from PATH or /usr/sbin.
set -euo pipefail

SUFFIX=dc=example,dc=com
ROOTDN=cn=admin,dc=example,dc=com
ROOTPW=secret

die() {
    printf 'slapd-export: error: %s\n' "$*" >&2
    exit 1
}

[[ $# == 2 ]] || die "usage: $0 OUTDIR INPUT.ldif"
outdir=$1
input=$2
[[ -f $input && -r $input ]] || die "input LDIF '$input' is not a readable file"
mkdir -p "$outdir" || die "cannot create output directory '$outdir'"
outdir=$(cd "$outdir" && pwd)
input=$(cd "$(dirname "$input")" && pwd)/$(basename "$input")

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# find_prog VAR NAME: the program (`prog_path`), or a clear stop.
find_prog() {
    prog_path "$2" "$1" || die "'$2' not found (\$$1, PATH, /usr/sbin) or \$$1 is not an executable: run scripts/test.sh, which installs slapd and ldap-utils"
}
slapd=$(find_prog SLAPD_BIN slapd)
slapadd=$(find_prog SLAPADD_BIN slapadd)
slapcat=$(find_prog SLAPCAT_BIN slapcat)
ldapsearch=$(find_prog LDAPSEARCH_BIN ldapsearch)

first_dir() {
    local d
    for d in "$@"; do
        if [[ -d $d ]]; then
            printf '%s\n' "$d"
            return
        fi
    done
}
schema_dir=$(first_dir /etc/ldap/schema /etc/openldap/schema /usr/local/etc/openldap/schema)
[[ -n $schema_dir ]] || die "OpenLDAP schema directory not found (looked for /etc/ldap/schema, /etc/openldap/schema)"
for s in core cosine inetorgperson nis; do
    [[ -r $schema_dir/$s.schema ]] || die "schema file $schema_dir/$s.schema is missing"
done
# Debian builds the backends as loadable modules; other builds may link mdb in statically.
module_dir=$(first_dir /usr/lib/ldap /usr/lib64/openldap /usr/lib/openldap /usr/libexec/openldap)

# The client tools must not read /etc/ldap/ldap.conf or ~/.ldaprc (a BASE or TLS setting there
# would change what ldapsearch does).
export LDAPNOINIT=1

work=$(mktemp -d "$outdir/.slapd.XXXXXX") || die "cannot create a temporary directory in '$outdir'"
slapd_pid=
# Stops our slapd: SIGTERM (it shuts down cleanly in milliseconds), SIGKILL after 10 s.
stop_slapd() {
    [[ -n $slapd_pid ]] || return 0
    stop_pid "$slapd_pid"
    slapd_pid=
}
cleanup() {
    local status=$?
    stop_slapd
    rm -rf "$work"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mkdir "$work/db"
{
    for s in core cosine inetorgperson nis; do
        printf 'include %s/%s.schema\n' "$schema_dir" "$s"
    done
    printf 'pidfile %s/slapd.pid\nargsfile %s/slapd.args\n' "$work" "$work"
    if [[ -n $module_dir ]] && [[ -e $module_dir/back_mdb.la || -e $module_dir/back_mdb.so ]]; then
        printf 'modulepath %s\nmoduleload back_mdb\n' "$module_dir"
    fi
    printf 'database mdb\nmaxsize 1073741824\nsuffix "%s"\nrootdn "%s"\nrootpw %s\ndirectory %s/db\n' \
        "$SUFFIX" "$ROOTDN" "$ROOTPW" "$work"
    printf 'index objectClass eq\n'
} >"$work/slapd.conf"

# Offline load: faster than ldapadd and gives the same entries (slapadd adds entryUUID, entryCSN
# and the timestamps itself).
"$slapadd" -f "$work/slapd.conf" -l "$input" >"$work/slapadd.log" 2>&1 ||
    die "slapadd could not load '$input':
$(cat "$work/slapadd.log")"

"$slapcat" -f "$work/slapd.conf" -l "$outdir/slapcat.ldif" >"$work/slapcat.log" 2>&1 ||
    die "slapcat failed:
$(cat "$work/slapcat.log")"

# Start slapd in the foreground on a random loopback port; another port is tried when the one
# picked is taken. "-d none" keeps slapd from forking (so $! is slapd itself) and prints only
# start, stop and errors such as "bind(6) failed errno=98 (Address already in use)"; with
# "-d 0" a failed start prints nothing at all.
url=
for attempt in 1 2 3 4 5 6 7 8 9 10; do
    port=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
    try_url=ldap://127.0.0.1:$port
    "$slapd" -f "$work/slapd.conf" -h "$try_url/" -d none >"$work/slapd.log" 2>&1 &
    slapd_pid=$!
    for _ in $(seq 200); do # up to ~10 s
        if ! kill -0 "$slapd_pid" 2>/dev/null; then
            break
        fi
        if "$ldapsearch" -x -H "$try_url" -b "" -s base -LLL 1.1 >/dev/null 2>&1; then
            url=$try_url
            break 2
        fi
        sleep 0.05
    done
    if kill -0 "$slapd_pid" 2>/dev/null; then
        die "slapd on $try_url did not answer within 10 s:
$(cat "$work/slapd.log")"
    fi
    wait "$slapd_pid" 2>/dev/null || true
    slapd_pid=
    grep -q 'Address already in use' "$work/slapd.log" ||
        die "slapd failed to start (attempt $attempt):
$(cat "$work/slapd.log")"
done
[[ -n $url ]] || die "no free loopback port found for slapd after 10 attempts"

search() {
    "$ldapsearch" -x -H "$url" -D "$ROOTDN" -w "$ROOTPW" -b "$SUFFIX" -s sub \
        -E pr=1000/noprompt "$@" '(objectClass=*)' '*' entryUUID
}
search -LLL >"$outdir/ldapsearch.ldif" 2>"$work/ldapsearch.err" ||
    die "ldapsearch -LLL failed:
$(cat "$work/ldapsearch.err")"
search >"$outdir/ldapsearch-commented.ldif" 2>"$work/ldapsearch.err" ||
    die "ldapsearch (commented) failed:
$(cat "$work/ldapsearch.err")"

stop_slapd
