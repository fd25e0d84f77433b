#!/usr/bin/env bash
# The project's test command (CI runs exactly this): installs what the tests need on a fresh
# Debian machine (OpenLDAP slapd + ldap-utils and Samba + ldb-tools from apt, the pinned SCIM
# server in .venv/, the scimmy SCIM server's npm packages in tests/support/scimmy/node_modules/,
# django-scim2 and Django in tests/support/django_scim/.venv/), then runs rustfmt, clippy and the
# whole test suite.
#
# Environment it exports for the tests (each may be set beforehand to override the lookup):
#   SLAPD_BIN, SLAPADD_BIN, SLAPCAT_BIN, LDAPSEARCH_BIN   OpenLDAP programs
#   SCIM2_SERVER_BIN                                      the pinned scim2-server in .venv/
#   DJANGO_SCIM_PYTHON                                    the Python of django-scim2's venv
#   TINYPROXY_BIN, STUNNEL_BIN                            the proxy and the TLS front of tests/proxy.rs
#   AIOSMTPD_PYTHON                                       the Python of .venv/, with aiosmtpd
# (Not SCIMSYNC_*: that prefix is the daemon's own configuration namespace.)
set -euo pipefail

SCIM2_SERVER_VERSION=0.8.3
AIOSMTPD_VERSION=1.4.6

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD

log() { printf '==> %s\n' "$*" >&2; }
die() {
    printf 'error: %s\n' "$*" >&2
    exit 1
}

# Runs a command as root: directly when we are root, through sudo otherwise.
as_root() {
    if [[ $(id -u) == 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null; then
        sudo "$@"
    else
        die "installing system packages needs root or sudo: run '$*' as root, then run this again"
    fi
}

source scripts/lib.sh
# find_prog NAME: the program (`prog_path`); prints nothing when it is missing.
find_prog() {
    prog_path "$1" || true
}

have_ldap_tools() {
    [[ -n $(find_prog slapd) && -n $(find_prog slapadd) && -n $(find_prog slapcat) && -n $(find_prog ldapsearch) ]]
}

apt_updated=
apt_install() {
    if [[ -z $apt_updated ]]; then
        log "apt-get update"
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null ||
            die "apt-get update failed (see above)"
        apt_updated=1
    fi
    log "apt-get install $*"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" ||
        die "apt-get install $* failed (see above)"
}

# Pids of running processes named slapd (from /proc: procps may be missing on a fresh machine).
slapd_pids() {
    local d comm
    for d in /proc/[0-9]*; do
        comm=$(cat "$d/comm" 2>/dev/null) || continue
        [[ $comm == slapd ]] && printf '%s\n' "${d#/proc/}"
    done
    return 0
}

POLICY=/usr/sbin/policy-rc.d
POLICY_BACKUP=/usr/sbin/policy-rc.d.scimsync-test
policy_installed=
restore_policy() {
    [[ -n $policy_installed ]] || return 0
    as_root rm -f "$POLICY"
    if [[ -e $POLICY_BACKUP ]]; then
        as_root mv "$POLICY_BACKUP" "$POLICY"
    fi
    policy_installed=
}

# apt_install_no_start PACKAGE...: apt_install with a policy-rc.d that answers 101, which
# forbids every service start while the install runs (an existing policy-rc.d is put back
# afterwards, also when the install fails).
apt_install_no_start() {
    trap restore_policy EXIT
    if [[ -e $POLICY ]]; then
        as_root mv "$POLICY" "$POLICY_BACKUP"
    fi
    policy_installed=1
    printf '#!/bin/sh\n# Installed by scripts/test.sh for the duration of an apt install.\nexit 101\n' |
        as_root tee "$POLICY" >/dev/null
    as_root chmod 755 "$POLICY"
    apt_install "$@"
    restore_policy
    trap - EXIT
}

# Installs slapd + ldap-utils without letting the package configure or start a system daemon:
# debconf is told to skip the initial configuration, and no service may start during the install.
install_ldap_tools() {
    local before pid
    command -v apt-get >/dev/null ||
        die "slapd/slapcat/ldapsearch are missing and there is no apt-get: install OpenLDAP's slapd and client tools by hand"
    before=$(slapd_pids)

    echo 'slapd slapd/no_configuration boolean true' | as_root debconf-set-selections
    apt_install_no_start slapd ldap-utils

    # Belt and braces: a slapd that appeared during the install was started by it; stop it.
    for pid in $(slapd_pids); do
        if ! grep -qx "$pid" <<<"$before"; then
            log "stopping slapd (pid $pid) that the package install started"
            as_root kill "$pid" || true
        fi
    done
}

t0=$SECONDS
if have_ldap_tools; then
    log "OpenLDAP tools present"
else
    log "installing OpenLDAP slapd and ldap-utils (apt)"
    install_ldap_tools
    have_ldap_tools || die "slapd, slapadd, slapcat or ldapsearch still missing after the apt install"
    log "OpenLDAP installed in $((SECONDS - t0)) s"
fi
export SLAPD_BIN=${SLAPD_BIN:-$(find_prog slapd)}
export SLAPADD_BIN=${SLAPADD_BIN:-$(find_prog slapadd)}
export SLAPCAT_BIN=${SLAPCAT_BIN:-$(find_prog slapcat)}
export LDAPSEARCH_BIN=${LDAPSEARCH_BIN:-$(find_prog ldapsearch)}

# Samba (samba, samba-tool, ldbadd) and openssl for scripts/samba-ad.sh, which runs the Active
# Directory domain controller of tests/ldap_samba.rs (that test needs root: samba binds the fixed
# ports 389 and 636). Some 40 MB to download. No service starts during the install; the
# packages' own daemons (smbd, nmbd, samba-ad-dc) are not used.
# A domain controller also needs what samba only recommends (so --no-install-recommends leaves it
# out): the AD schema (samba-ad-provision), the directory's ldb modules (samba-dsdb-modules) and
# the sysvol ACL module (samba-vfs-modules); `samba-tool domain provision` fails without each.
SAMBA_PACKAGES=(samba samba-ad-provision samba-dsdb-modules samba-vfs-modules ldb-tools openssl)
have_samba_tools() {
    [[ -n $(find_prog samba) && -n $(find_prog samba-tool) && -n $(find_prog ldbadd) && -n $(find_prog openssl) ]] &&
        [[ $(dpkg-query -W -f='${Status}\n' "${SAMBA_PACKAGES[@]}" 2>/dev/null | grep -c 'install ok installed') == "${#SAMBA_PACKAGES[@]}" ]]
}
if have_samba_tools; then
    log "Samba present"
else
    t_samba=$SECONDS
    command -v apt-get >/dev/null ||
        die "samba/samba-tool/ldbadd are missing and there is no apt-get: install Samba (AD DC) and ldb-tools by hand"
    log "installing ${SAMBA_PACKAGES[*]} (apt, some 40 MB)"
    apt_install_no_start "${SAMBA_PACKAGES[@]}"
    have_samba_tools || die "one of ${SAMBA_PACKAGES[*]} is still missing after the apt install"
    log "Samba installed in $((SECONDS - t_samba)) s"
fi

# systemd-analyze (verify, security --offline) for tests/systemd_unit.rs, and /bin/kill, which
# the unit's ExecReload names. Installing the package starts nothing.
if command -v systemd-analyze >/dev/null; then
    log "systemd-analyze present"
else
    log "installing systemd (for systemd-analyze)"
    apt_install systemd
    command -v systemd-analyze >/dev/null || die "systemd-analyze still missing after the apt install"
fi
if [[ ! -x /bin/kill ]]; then
    apt_install procps
fi

# tinyproxy (a forward HTTP proxy) and stunnel (TLS in front of scim2-server) for tests/proxy.rs,
# which syncs through the proxy. No service starts during the install; the tests run their own.
if [[ -n $(find_prog tinyproxy) && -n $(find_prog stunnel4) ]]; then
    log "tinyproxy and stunnel present"
else
    command -v apt-get >/dev/null ||
        die "tinyproxy/stunnel4 are missing and there is no apt-get: install them by hand"
    apt_install_no_start tinyproxy stunnel4
    [[ -n $(find_prog tinyproxy) && -n $(find_prog stunnel4) ]] ||
        die "tinyproxy or stunnel4 still missing after the apt install"
fi
export TINYPROXY_BIN=${TINYPROXY_BIN:-$(find_prog tinyproxy)}
export STUNNEL_BIN=${STUNNEL_BIN:-$(find_prog stunnel4)}

# The Debian package test (tests/debian_package.rs): dpkg-shlibdeps (cargo-deb's Depends:) comes
# with dpkg-dev, strip and objcopy (the dbgsym package) and objdump with binutils; cargo-deb itself
# is installed below, once cargo is known.
if ! command -v dpkg-shlibdeps >/dev/null || ! command -v strip >/dev/null; then
    apt_install dpkg-dev binutils
fi

# python3 that can make a venv (Debian splits venv and ensurepip into python3-venv).
need_python_venv() {
    if ! command -v python3 >/dev/null || ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
        log "python3 with venv support is missing"
        apt_install python3 python3-venv
    fi
}

# The pinned SCIM 2.0 server, in a venv local to the checkout, with its `cursor` extra (RFC 9865
# cursor pagination, for the SCIM source tests).
venv=$ROOT/.venv
scim_server_ok() {
    [[ -x $venv/bin/scim2-server ]] &&
        [[ $("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("scim2-server"))' 2>/dev/null) == "$SCIM2_SERVER_VERSION" ]] &&
        "$venv/bin/python" -c 'import cryptography' 2>/dev/null
}
if scim_server_ok; then
    log "scim2-server $SCIM2_SERVER_VERSION present in .venv/"
else
    t1=$SECONDS
    need_python_venv
    if [[ ! -x $venv/bin/python ]] || ! "$venv/bin/python" -c 'import sys' 2>/dev/null; then
        log "creating the Python venv .venv/"
        rm -rf "$venv"
        python3 -m venv "$venv"
    fi
    log "pip install scim2-server[cursor]==$SCIM2_SERVER_VERSION into .venv/"
    "$venv/bin/pip" install -q --disable-pip-version-check "scim2-server[cursor]==$SCIM2_SERVER_VERSION"
    scim_server_ok || die ".venv/bin/scim2-server $SCIM2_SERVER_VERSION is still missing after pip install"
    log "scim2-server installed in $((SECONDS - t1)) s"
fi
export SCIM2_SERVER_BIN=$venv/bin/scim2-server

# The SMTP server the notification tests send mail to (aiosmtpd, saving to a maildir), pinned,
# in the same venv.
if [[ $("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("aiosmtpd"))' 2>/dev/null) == "$AIOSMTPD_VERSION" ]]; then
    log "aiosmtpd $AIOSMTPD_VERSION present in .venv/"
else
    log "pip install aiosmtpd==$AIOSMTPD_VERSION into .venv/"
    "$venv/bin/pip" install -q --disable-pip-version-check "aiosmtpd==$AIOSMTPD_VERSION" ||
        die "pip install aiosmtpd==$AIOSMTPD_VERSION into .venv/ failed (see above)"
fi
export AIOSMTPD_PYTHON=${AIOSMTPD_PYTHON:-$venv/bin/python}

# The second SCIM server (scimmy on express 4, tests/support/scimmy/): its npm packages, exactly
# as package-lock.json pins them. A copy of the lock file in node_modules/ records what was
# installed, so a changed lock file installs again.
scimmy_dir=$ROOT/tests/support/scimmy
scimmy_stamp=$scimmy_dir/node_modules/.scimsync-installed-lock.json
if [[ -d $scimmy_dir/node_modules ]] && cmp -s "$scimmy_dir/package-lock.json" "$scimmy_stamp"; then
    log "scimmy's npm packages present in tests/support/scimmy/node_modules/"
else
    command -v node >/dev/null && command -v npm >/dev/null ||
        die "node and npm are missing: the scimmy test server needs Node.js 18 or later with npm (Debian: apt-get install nodejs npm), then run this again"
    t2=$SECONDS
    log "npm ci --prefix tests/support/scimmy"
    npm ci --prefix "$scimmy_dir" --no-audit --no-fund ||
        die "npm ci in tests/support/scimmy failed (see above)"
    cp "$scimmy_dir/package-lock.json" "$scimmy_stamp"
    log "scimmy's npm packages installed in $((SECONDS - t2)) s"
fi

# The third SCIM server (django-scim2 in a minimal Django project, tests/support/django_scim/):
# its PyPI packages in a venv of their own, exactly as requirements.txt pins them (every package,
# installed with --no-deps, so nothing unpinned comes in). A copy of requirements.txt in the venv
# records what was installed, so a changed file installs again.
django_dir=$ROOT/tests/support/django_scim
django_venv=$django_dir/.venv
django_stamp=$django_venv/.scimsync-installed-requirements.txt
if [[ -x $django_venv/bin/python ]] && cmp -s "$django_dir/requirements.txt" "$django_stamp" &&
    "$django_venv/bin/python" -c 'import django_scim' 2>/dev/null; then
    log "django-scim2 present in tests/support/django_scim/.venv/"
else
    t3=$SECONDS
    need_python_venv
    log "creating tests/support/django_scim/.venv/ and installing requirements.txt"
    rm -rf "$django_venv"
    python3 -m venv "$django_venv"
    "$django_venv/bin/pip" install -q --disable-pip-version-check --no-deps -r "$django_dir/requirements.txt" ||
        die "pip install -r tests/support/django_scim/requirements.txt failed (see above)"
    "$django_venv/bin/pip" check --disable-pip-version-check >/dev/null ||
        die "tests/support/django_scim/requirements.txt misses a dependency: $("$django_venv/bin/pip" check 2>&1 | head -3)"
    cp "$django_dir/requirements.txt" "$django_stamp"
    log "django-scim2 installed in $((SECONDS - t3)) s"
fi
export DJANGO_SCIM_PYTHON=${DJANGO_SCIM_PYTHON:-$django_venv/bin/python}

# promtool (Debian's prometheus package) checks contrib/prometheus/scimsync-alerts.yml and runs
# its unit tests below, and tests/contrib.rs checks the Grafana dashboard's PromQL with it. The
# package ships a Prometheus service: no service may start during the install.
if command -v promtool >/dev/null; then
    log "promtool present"
else
    command -v apt-get >/dev/null ||
        die "promtool is missing and there is no apt-get: install Prometheus' promtool by hand (or set PROMTOOL_BIN)"
    log "installing prometheus (apt, for promtool; the service is not started)"
    apt_install_no_start prometheus
    command -v promtool >/dev/null || die "promtool still missing after the apt install"
fi
export PROMTOOL_BIN=${PROMTOOL_BIN:-$(command -v promtool)}

command -v cargo >/dev/null || die "cargo is missing: install a Rust toolchain (rustup) first"

# cargo-deb, pinned (scripts/build-deb.sh names the same version), for tests/debian_package.rs.
CARGO_DEB_VERSION=3.8.0
if [[ $(cargo deb --version 2>/dev/null) != *" $CARGO_DEB_VERSION"* ]]; then
    log "cargo install cargo-deb $CARGO_DEB_VERSION"
    cargo install --locked cargo-deb --version "$CARGO_DEB_VERSION" ||
        die "cargo install cargo-deb $CARGO_DEB_VERSION failed (see above)"
fi

# A one-off build: incremental artefacts would only double the target directory's size.
export CARGO_INCREMENTAL=0
log "disk: $(df -h --output=avail . | tail -1 | tr -d ' ') free where the build goes"

log "cargo fmt --check"
cargo fmt --check || die "formatting differs: run 'cargo fmt' and commit the result"

log "cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets -- -D warnings

# The alerting rules parse, and fire when their unit tests say they do.
log "promtool check rules / test rules (contrib/prometheus)"
"$PROMTOOL_BIN" check rules contrib/prometheus/scimsync-alerts.yml
(cd contrib/prometheus && "$PROMTOOL_BIN" test rules scimsync-alerts.test.yml)

# The README's first command, read from the README itself (the line after "# 1." in its set-up
# section), so that what a newcomer types first is what is tested. It must plan the bundled
# example as the README says: 35 users and six groups to create.
readme_cmd=$(awk '/^## Set-up on a fresh machine/ { section = 1 } section && /^# 1\./ { getline; print; exit }' README.md)
[[ -n $readme_cmd ]] || die "README.md's set-up section has no command after its '# 1.' line"
log "the README's first command: $readme_cmd"
readme_out=$(bash -c "$readme_cmd" 2>/tmp/scimsync-readme-first.err) ||
    die "the README's first command failed: $readme_cmd ($(tail -5 /tmp/scimsync-readme-first.err))"
grep -q '^Plan: 35 users to create, .* 6 groups to create' <<<"$readme_out" ||
    die "the README's first command did not plan 35 users and 6 groups: $(tail -3 <<<"$readme_out")"

# The benchmarks' quick smoke (2,000 users, debug build): the bench tools still work, and a
# no-change plan and sync send nothing and rewrite nothing. Full runs: benches/README.md.
log "benches/run.sh --smoke"
bash benches/run.sh --smoke

# The package as an administrator meets it: built from the debug binary, installed with apt on a
# booted Debian 12 (systemd-nspawn), the config edited, `systemctl enable --now scimsync` and a
# second instance `scimsync@acme`, both applying the demo directory to scim2-server.
log "scripts/deb-boot-check.sh"
cargo build --bin scimsync
bash scripts/deb-assets.sh target/debug/scimsync
rm -rf target/deb-boot/pkg
cargo deb --no-build --profile dev --fast --output target/deb-boot/pkg >/dev/null
bash scripts/deb-boot-check.sh target/deb-boot/pkg/scimsync_*.deb

# Doc tests first: nextest does not run them, and the test runner's summary should be the last
# thing this script prints.
log "cargo test --doc"
cargo test --doc

if cargo nextest --version >/dev/null 2>&1; then
    log "cargo nextest run --no-fail-fast"
    cargo nextest run --no-fail-fast
else
    log "cargo-nextest not found; cargo test --no-fail-fast"
    cargo test --no-fail-fast
fi
