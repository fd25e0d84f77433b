#!/usr/bin/env bash
# samba-ad.sh start DIR | stop DIR
#
# Runs a throwaway Samba Active Directory domain controller on 127.0.0.1 for integration tests.
#
#   start DIR  On the first start, provisions the domain SCIMSYNC.TEST (NetBIOS name SCIMSYNC,
#              RFC 2307 attributes, DNS partitions but no DNS server) under DIR/dc and loads
#              the test data (below) into it while it is offline. Then starts samba in the
#              background, waits until an authenticated search answers, writes DIR/env and
#              DIR/samba.pid and returns, leaving samba running. A later start on the same
#              DIR reuses the database (and its changes) without provisioning again.
#   stop DIR   Stops the samba started by "start DIR" (SIGTERM, SIGKILL after 10 s).
#
# DIR/env holds KEY='value' lines (the value in single quotes, so that the file can be sourced):
#   URL        ldap://127.0.0.1:389      LDAPS_URL  ldaps://127.0.0.1:636 (StartTLS on URL too)
#   BIND_DN    Administrator@SCIMSYNC.TEST (simple bind; the DN form
#              CN=Administrator,CN=Users,DC=scimsync,DC=test works as well)
#   PASSWORD   the administrator password
#   BASE_DN    DC=scimsync,DC=test
#   CA_CERT    DIR/tls/ca.pem: the CA of the server certificate (SAN IP:127.0.0.1, localhost)
#   PID        the samba process, also in DIR/samba.pid
#   STOP       the command that stops it
#
# Test data, in OU=People,DC=scimsync,DC=test:
#   CN=user0001 .. CN=user1600  enabled users (userAccountControl 544), sAMAccountName userNNNN,
#                               mail, givenName, sn, displayName, uidNumber 10001..11600
#   CN=disabled                 a disabled user (userAccountControl 546 = 0x222, bit 0x2 set)
#   CN=big                      group, members: all 1,600 userNNNN
#   CN=inner                    group, members: user0002, user0003, disabled
#   CN=outer                    group, members: CN=inner (nested) and user0001
#   CN=WS01                     computer (userAccountControl 4096), sAMAccountName WS01$
#
# Samba's LDAP server listens on the fixed ports 389, 636, 3268 and 3269 (there is no option
# to change them), so only one instance can run per network namespace, and samba needs root
# or CAP_NET_BIND_SERVICE. Simple binds over plain LDAP are allowed ("ldap server require
# strong auth = no"). Only the ldap service runs: no SMB, Kerberos, DNS, NetBIOS or RPC.
# Nothing outside DIR is written (ldbadd does read /etc/samba/smb.conf, if any, for defaults).
set -euo pipefail

REALM=SCIMSYNC.TEST
DOMAIN=SCIMSYNC
BASE_DN=DC=scimsync,DC=test
ADMIN_USER=Administrator@$REALM
ADMIN_PASSWORD=Scim-Sync.Test-2026
USERS=1600

die() {
    printf 'samba-ad: error: %s\n' "$*" >&2
    exit 1
}

[[ $# == 2 && ($1 == start || $1 == stop) ]] || die "usage: $0 start|stop DIR"
cmd=$1
mkdir -p "$2" || die "cannot create directory '$2'"
dir=$(cd "$2" && pwd)
[[ $dir != *"'"* ]] || die "DIR must not contain a single quote: '$dir'"
script=$(cd "$(dirname "$0")" && pwd)/$(basename "$0")

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# find_prog NAME: the program (`prog_path`), or a clear stop.
find_prog() {
    prog_path "$1" || die "'$1' not found (PATH, /usr/sbin): apt-get install samba ldb-tools ldap-utils openssl"
}

# The client tools must not read /etc/ldap/ldap.conf or ~/.ldaprc.
export LDAPNOINIT=1

pid_alive() {
    [[ -f $dir/samba.pid ]] && kill -0 "$(cat "$dir/samba.pid")" 2>/dev/null
}

stop_samba() {
    local pid
    [[ -f $dir/samba.pid ]] || return 0
    pid=$(cat "$dir/samba.pid")
    stop_pid "$pid"
    rm -f "$dir/samba.pid"
}

if [[ $cmd == stop ]]; then
    stop_samba
    exit 0
fi

samba=$(find_prog samba)
samba_tool=$(find_prog samba-tool)
ldbadd=$(find_prog ldbadd)
ldapsearch=$(find_prog ldapsearch)
openssl=$(find_prog openssl)

pid_alive && die "samba is already running for '$dir' (pid $(cat "$dir/samba.pid")); run: $0 stop $dir"
if ss -Hltn 'sport = :389' 2>/dev/null | grep -q .; then
    die "port 389 is already in use:
$(ss -Hltnp 'sport = :389' 2>/dev/null)"
fi

conf=$dir/dc/etc/smb.conf
sam=$dir/dc/private/sam.ldb

# populate_ldif: the test data described at the top.
populate_ldif() {
    local i n people=OU=People,$BASE_DN
    printf 'dn: %s\nobjectClass: organizationalUnit\nou: People\n\n' "$people"
    for ((i = 1; i <= USERS; i++)); do
        printf -v n '%04d' "$i"
        printf 'dn: CN=user%s,%s\nobjectClass: user\nsAMAccountName: user%s\n' "$n" "$people" "$n"
        printf 'userPrincipalName: user%s@scimsync.test\nmail: user%s@scimsync.test\n' "$n" "$n"
        printf 'givenName: Given%s\nsn: Family%s\ndisplayName: User %s\n' "$n" "$n" "$n"
        printf 'uidNumber: %d\ngidNumber: 10000\nuserAccountControl: 544\n\n' $((10000 + i))
    done
    printf 'dn: CN=disabled,%s\nobjectClass: user\nsAMAccountName: disabled\n' "$people"
    printf 'mail: disabled@scimsync.test\nuserAccountControl: 546\n\n'
    printf 'dn: CN=big,%s\nobjectClass: group\nsAMAccountName: big\n' "$people"
    for ((i = 1; i <= USERS; i++)); do
        printf 'member: CN=user%04d,%s\n' "$i" "$people"
    done
    printf '\n'
    printf 'dn: CN=inner,%s\nobjectClass: group\nsAMAccountName: inner\n' "$people"
    printf 'member: CN=user0002,%s\nmember: CN=user0003,%s\nmember: CN=disabled,%s\n\n' \
        "$people" "$people" "$people"
    printf 'dn: CN=outer,%s\nobjectClass: group\nsAMAccountName: outer\n' "$people"
    printf 'member: CN=inner,%s\nmember: CN=user0001,%s\n\n' "$people" "$people"
    printf 'dn: CN=WS01,%s\nobjectClass: computer\nsAMAccountName: WS01$\n' "$people"
    printf 'userAccountControl: 4096\ndNSHostName: ws01.scimsync.test\n\n'
}

# DIR/dc/provisioned marks a complete provision and load; anything less is started over.
if [[ ! -f $dir/dc/provisioned ]]; then
    rm -rf "$dir/dc" "$dir/tls"
    mkdir -p "$dir/dc/log" "$dir/dc/run" "$dir/tls"

    # A certificate that verifies against 127.0.0.1 and localhost (the one samba generates
    # itself names only the host's FQDN).
    "$openssl" req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=scimsync test CA" \
        -keyout "$dir/tls/ca-key.pem" -out "$dir/tls/ca.pem" \
        -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
        >"$dir/tls/openssl.log" 2>&1 || die "openssl (CA) failed: $(cat "$dir/tls/openssl.log")"
    "$openssl" req -newkey rsa:2048 -nodes -subj "/CN=dc1.scimsync.test" \
        -keyout "$dir/tls/key.pem" -out "$dir/tls/cert.csr" >>"$dir/tls/openssl.log" 2>&1 ||
        die "openssl (key) failed: $(cat "$dir/tls/openssl.log")"
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:dc1.scimsync.test\nextendedKeyUsage=serverAuth\n' \
        >"$dir/tls/ext.cnf"
    "$openssl" x509 -req -in "$dir/tls/cert.csr" -CA "$dir/tls/ca.pem" -CAkey "$dir/tls/ca-key.pem" \
        -CAcreateserial -days 3650 -extfile "$dir/tls/ext.cnf" -out "$dir/tls/cert.pem" \
        >>"$dir/tls/openssl.log" 2>&1 || die "openssl (cert) failed: $(cat "$dir/tls/openssl.log")"
    chmod 600 "$dir/tls/key.pem" # samba refuses a key file others can read

    "$samba_tool" domain provision --targetdir="$dir/dc" --realm="$REALM" --domain="$DOMAIN" \
        --server-role=dc --use-rfc2307 --dns-backend=SAMBA_INTERNAL --host-name=dc1 \
        --host-ip=127.0.0.1 --adminpass="$ADMIN_PASSWORD" >"$dir/dc/log/provision.log" 2>&1 ||
        die "samba-tool domain provision failed:
$(tail -30 "$dir/dc/log/provision.log")"

    # Keep the [global] section that provisioning wrote (paths under DIR/dc, realm, role) minus
    # the settings replaced below; drop the share sections.
    awk '/^\[/ && !/^\[global\]/ { exit }
         /^[ \t]*(server services|log file|logging|interfaces|bind interfaces only)[ \t]*=/ { next }
         { print }' "$conf" >"$conf.new"
    cat >>"$conf.new" <<EOF
	server services = ldap
	interfaces = 127.0.0.1
	bind interfaces only = yes
	ldap server require strong auth = no
	tls enabled = yes
	tls keyfile = $dir/tls/key.pem
	tls certfile = $dir/tls/cert.pem
	tls cafile = $dir/tls/ca.pem
	log file = $dir/dc/log/log.%m
	logging = file
	pid directory = $dir/dc/run
	ncalrpc dir = $dir/dc/run/ncalrpc
	winbindd socket directory = $dir/dc/run/winbindd
	ntp signd socket directory = $dir/dc/run/ntp_signd
EOF
    mv "$conf.new" "$conf"

    # Offline load through the samba modules (SIDs, GUIDs, linked attributes): about twice
    # as fast as ldapadd against the running server.
    populate_ldif >"$dir/dc/populate.ldif"
    "$ldbadd" -H "$sam" "$dir/dc/populate.ldif" >"$dir/dc/log/populate.log" 2>&1 ||
        die "ldbadd of the test data failed:
$(tail -30 "$dir/dc/log/populate.log")"
    touch "$dir/dc/provisioned"
fi

# -M single: one process (no prefork children); -F: no fork, so $! is samba itself.
"$samba" -s "$conf" -M single -F --debug-stdout -d 1 </dev/null >"$dir/samba.log" 2>&1 &
pid=$!
printf '%s\n' "$pid" >"$dir/samba.pid"

url=ldap://127.0.0.1:389
ready=
for _ in $(seq 600); do # up to ~30 s
    if ! kill -0 "$pid" 2>/dev/null; then
        rm -f "$dir/samba.pid"
        die "samba exited during startup:
$(tail -30 "$dir/samba.log")"
    fi
    if "$ldapsearch" -x -H "$url" -D "$ADMIN_USER" -w "$ADMIN_PASSWORD" -b "$BASE_DN" -s base \
        -LLL 1.1 >/dev/null 2>&1; then
        ready=1
        break
    fi
    sleep 0.05
done
if [[ -z $ready ]]; then
    stop_samba
    die "samba did not answer on $url within 30 s:
$(tail -30 "$dir/samba.log")"
fi

{
    printf "URL='%s'\n" "$url"
    printf "LDAPS_URL='%s'\n" ldaps://127.0.0.1:636
    printf "BIND_DN='%s'\n" "$ADMIN_USER"
    printf "PASSWORD='%s'\n" "$ADMIN_PASSWORD"
    printf "BASE_DN='%s'\n" "$BASE_DN"
    printf "CA_CERT='%s'\n" "$dir/tls/ca.pem"
    printf "PID='%s'\n" "$pid"
    printf "STOP='%s'\n" "$script stop $dir"
} >"$dir/env"
