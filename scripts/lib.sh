# Shell helpers the project's scripts source (scripts/test.sh, scripts/slapd-export.sh,
# scripts/samba-ad.sh, benches/ldap.sh). Sourcing defines functions only.

# prog_path NAME [VAR]: the program NAME: $VAR when VAR is given and set, else NAME on PATH, else in
# the sbin directories (slapd, slapcat and samba live in /usr/sbin, not on a normal user's PATH).
# Prints its path; fails, printing nothing, when there is none or $VAR is not an executable.
prog_path() {
    local name=$1 var=${2:-} dir
    if [[ -n $var && -n ${!var:-} ]]; then
        [[ -x ${!var} ]] || return 1
        printf '%s\n' "${!var}"
        return 0
    fi
    command -v "$name" 2>/dev/null && return 0
    for dir in /usr/sbin /usr/local/sbin /sbin; do
        if [[ -x $dir/$name ]]; then
            printf '%s\n' "$dir/$name"
            return 0
        fi
    done
    return 1
}

# stop_pid PID: SIGTERM (the servers we start shut down cleanly in milliseconds), SIGKILL after
# 10 s, then reaps it when it is this shell's child.
stop_pid() {
    local pid=$1
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}
