#!/usr/bin/env bash
# Installs a scimsync .deb on a freshly booted Debian system and starts it the way the README
# says: `apt install ./scimsync_*.deb`, put the token, edit /etc/scimsync/scimsync.toml,
# `systemctl enable --now scimsync` — and a second directory as the instance `scimsync@acme`.
# Passes when both services are active, have applied the bundled demo directory to a real
# scim2-server on the host (35 users each, in their own tenants), keep their own state, and an
# upgrade restarts both and keeps the edited config.
#
#   scripts/deb-boot-check.sh target/debian/scimsync_*.deb
#
# The system is Debian 12 (bookworm, minbase + systemd) made by debootstrap once into
# target/deb-boot/rootfs and booted with systemd-nspawn, its changes kept in memory
# (--volatile=overlay), so each check starts from the same fresh system. It shares the host's
# network, so it reaches the scim2-server this script starts on 127.0.0.1. Needs root; installs
# debootstrap and systemd-container from apt when missing. About 3 minutes the first time
# (download), 20 s after.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD

log() { printf '==> %s\n' "$*" >&2; }
die() {
    printf 'error: %s\n' "$*" >&2
    exit 1
}

[[ $# == 1 && -f $1 ]] || die "usage: scripts/deb-boot-check.sh PATH/TO/scimsync_VERSION_ARCH.deb"
deb=$(realpath "$1")
[[ $(id -u) == 0 ]] || die "booting a system with systemd-nspawn needs root"

if ! command -v systemd-nspawn >/dev/null || ! command -v debootstrap >/dev/null; then
    log "apt-get install systemd-container debootstrap"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends systemd-container debootstrap >/dev/null ||
        die "installing systemd-container and debootstrap failed"
fi

scim2_server=${SCIM2_SERVER_BIN:-$ROOT/.venv/bin/scim2-server}
[[ -x $scim2_server ]] || die "$scim2_server is missing: run scripts/test.sh first (it installs it), or set SCIM2_SERVER_BIN"

work=$ROOT/target/deb-boot
rootfs=$work/rootfs
if [[ ! -e $rootfs/.scimsync-ready ]]; then
    log "debootstrap bookworm into $rootfs (once)"
    rm -rf "$rootfs"
    mkdir -p "$work"
    debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus bookworm "$rootfs" \
        http://deb.debian.org/debian >"$work/debootstrap.log" 2>&1 ||
        die "debootstrap failed: $(tail -3 "$work/debootstrap.log")"
    touch "$rootfs/.scimsync-ready"
fi

run=$(mktemp -d /tmp/scimsync-deb-boot.XXXXXX)
server_pid=
cleanup() {
    [[ -n $server_pid ]] && kill "$server_pid" 2>/dev/null || true
    rm -rf "$run"
}
trap cleanup EXIT

# The target: scim2-server with the NinjaOne schemas the tests use, one tenant per instance.
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
token="deb-check-$RANDOM$RANDOM"
"$scim2_server" --hostname 127.0.0.1 --port "$port" --bearer-token "$token" \
    --schema tests/data/scim/schemas.json --resource-type tests/data/scim/resource-types.json \
    --dynamic-tenants >"$run/scim2-server.log" 2>&1 &
server_pid=$!
for _ in $(seq 100); do
    curl -fsS -o /dev/null -H "Authorization: Bearer $token" "http://127.0.0.1:$port/ready/v2/ServiceProviderConfig" 2>/dev/null && break
    sleep 0.1
done

# What an administrator does after the boot, run by a unit of the booted system. Its lines
# reach this script through the console.
mkdir -p "$run/share"
cp "$deb" "$run/share/"
cp config/demo/directory.ldif "$run/share/people.ldif"
printf '%s\n' "$token" >"$run/share/token"
cat >"$run/share/admin.sh" <<EOF
#!/bin/bash
set -x
fail() { echo "DEB-CHECK FAIL: \$*"; journalctl --no-pager -n 40 -u scimsync -u scimsync@acme; systemctl poweroff; exit 1; }
cd /share
apt-get install -y -q ./$(basename "$deb") || fail "apt install ./$(basename "$deb")"
test -f /usr/lib/systemd/system/scimsync.service || test -f /lib/systemd/system/scimsync.service || fail "no scimsync.service"
systemctl is-enabled scimsync && fail "the package enabled the service before it was configured"
install -d -m 755 /srv/export
install -m 644 /share/people.ldif /srv/export/people.ldif

# The one file: the token beside it, then the URL of the target.
install -m 600 /share/token /etc/scimsync/target.token
sed -i 's|^url = "https://app.ninjarmm.com/ws/scim/v2"|url = "http://127.0.0.1:$port/main/v2"|' /etc/scimsync/scimsync.toml
grep -q '127.0.0.1:$port/main' /etc/scimsync/scimsync.toml || fail "the example config has no target.url line to edit"
systemctl enable --now scimsync || fail "systemctl enable --now scimsync"

# A second directory: the instance scimsync@acme, its own config, token and state.
sed -e 's|127.0.0.1:$port/main|127.0.0.1:$port/acme|' -e 's|^path = "/var/lib/scimsync/state.db"|path = "/var/lib/scimsync-acme/state.db"|' \
    /etc/scimsync/scimsync.toml >/etc/scimsync/acme.toml
install -m 600 /share/token /etc/scimsync/acme.token
systemctl enable --now scimsync@acme || fail "systemctl enable --now scimsync@acme"

for unit in scimsync scimsync@acme; do
    for i in \$(seq 60); do
        systemctl status "\$unit" --no-pager | grep -q 'last run' && break
        sleep 1
    done
    systemctl is-active "\$unit" || fail "\$unit is not active"
    systemctl status "\$unit" --no-pager | cat
    systemctl status "\$unit" --no-pager | grep -q 'last run [0-9:]*: 35 users created' ||
        fail "\$unit's first run did not create the demo's 35 users"
done
scimsync status || fail "scimsync status"
scimsync --config /etc/scimsync/acme.toml status || fail "scimsync status of acme"
test -s /var/lib/scimsync/state.db || fail "no state database in /var/lib/scimsync"
test -s /var/lib/scimsync-acme/state.db || fail "no state database in /var/lib/scimsync-acme"
systemd-analyze security scimsync.service --no-pager | tail -1

# An upgrade (here: the same package again) restarts what runs, the instance too, and keeps the
# edited config.
before="\$(systemctl show -P MainPID scimsync) \$(systemctl show -P MainPID scimsync@acme)"
apt-get install -y -q --reinstall ./$(basename "$deb") || fail "apt install --reinstall"
after="\$(systemctl show -P MainPID scimsync) \$(systemctl show -P MainPID scimsync@acme)"
for unit in scimsync scimsync@acme; do systemctl is-active "\$unit" || fail "\$unit is not active after the upgrade"; done
for pid in \$after; do case " \$before " in *" \$pid "*) fail "a service was not restarted by the upgrade (\$before -> \$after)";; esac; done
grep -q '127.0.0.1:$port/main' /etc/scimsync/scimsync.toml || fail "the upgrade replaced the edited config"
echo "DEB-CHECK OK"
systemctl poweroff
EOF
chmod 755 "$run/share/admin.sh"
cat >"$run/admin.service" <<'EOF'
[Unit]
Description=The administrator's steps of scripts/deb-boot-check.sh
After=multi-user.target
[Service]
Type=oneshot
ExecStart=/share/admin.sh
StandardOutput=journal+console
StandardError=journal+console
[Install]
WantedBy=multi-user.target
EOF

log "booting Debian 12 with systemd-nspawn; installing $(basename "$deb")"
# The unit is bound in read-only and pulled in by a drop-in of multi-user.target, so the root file
# system stays untouched (--volatile=overlay keeps every change in memory) and the
# multi-user.target.wants directory stays writable for `systemctl enable`.
printf '[Unit]\nWants=admin.service\n' >"$run/wants-admin.conf"
timeout 300 systemd-nspawn --register=no --keep-unit --quiet --volatile=overlay -D "$rootfs" \
    --bind-ro="$run/share:/share" --bind-ro="$run/admin.service:/etc/systemd/system/admin.service" \
    --bind-ro="$run/wants-admin.conf:/etc/systemd/system/multi-user.target.d/admin.conf" \
    -b >"$run/console.log" 2>&1 || true
sed 's/\x1b\[[0-9;]*m//g' "$run/console.log" >"$work/console.log"

grep -q 'DEB-CHECK OK' "$work/console.log" ||
    die "the installed package did not come up (console in $work/console.log): $(grep -a 'DEB-CHECK FAIL' "$work/console.log" | tail -1)"

# What reached the target: the demo's 35 users in each tenant.
for tenant in main acme; do
    n=$(curl -fsS -H "Authorization: Bearer $token" "http://127.0.0.1:$port/$tenant/v2/Users?count=1" |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["totalResults"])')
    [[ $n == 35 ]] || die "tenant $tenant holds $n users after the first run, not the demo's 35"
done
log "deb boot check passed: both services active, 35 users in each tenant, both restarted by an upgrade (console: $work/console.log)"
