# shellcheck shell=bash
# Helpers shared by cluster-up.sh and cluster-down.sh (sourced, not run).
# Both scripts find their daemons by pid file, never by process name, so that they neither mistake
# nor stop somebody else's processes.

say() { echo "${0##*/}: $*" >&2; }
die() { say "$*"; exit 1; }

# detached COMMAND...: starts a daemon with none of our standard streams nor fd 3. A daemon that kept them would
# keep the pipe of whoever reads our output open for its whole life: `$(cluster-up.sh)` in CI then never
# returns (it waits for end of file). What the starting command prints goes to DAEMON_LOG.
DAEMON_LOG=/var/log/taskvec-ir-cluster.log
detached() { "$@" </dev/null >>"$DAEMON_LOG" 2>&1 3>&-; }

# running /run/NAME.pid [PROGRAM]: true while the process in the pid file is alive and is the program NAME
# (or PROGRAM, for a pid file named otherwise)
# (a stale file whose pid was reused by another process does not count). A zombie (exited, not yet
# reaped: this machine's init reaps orphans late) would pass `kill -0`, hence its state letter.
running() {
    [[ -s $1 ]] || return 1
    local state comm
    read -r state comm <<<"$(ps -o stat=,comm= -p "$(cat "$1")")"
    [[ $comm == "${2:-$(basename "$1" .pid)}" && $state != Z* ]]
}
not_running() { ! running "$1"; }

# wait_until SECONDS COMMAND...: polls COMMAND every half second; false if it never succeeded.
wait_until() {
    local deadline=$((SECONDS + $1)); shift
    until "$@" >/dev/null 2>&1; do
        ((SECONDS < deadline)) || return 1
        sleep 0.5
    done
}

# stop_daemon PIDFILE NAME: SIGTERM, then wait for the exit (slurmctld saves its state first).
stop_daemon() {
    local pid_file=$1 name=$2
    running "$pid_file" || return 0
    say "stopping $name"
    kill "$(cat "$pid_file")"
    wait_until 30 not_running "$pid_file" || die "$name (pid $(cat "$pid_file")) did not exit within 30 s"
}

# The Debian PostgreSQL cluster named "main" of the newest version that has one (empty if none).
pg_main_version() {
    command -v pg_lsclusters >/dev/null || return 0
    pg_lsclusters -h | awk '$2 == "main" {print $1}' | sort -V | tail -n 1
}
# online / down, as pg_lsclusters says.
pg_status() { pg_lsclusters -h | awk -v v="$1" '$1 == v && $2 == "main" {print $4}'; }
