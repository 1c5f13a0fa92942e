#!/usr/bin/env bash
# Brings up the two servers the cluster tests talk to, on this machine:
#   * a one-node SLURM cluster (munged, slurmctld, slurmd) with a CPU partition, and its accounting (slurmdbd
#     on MariaDB): sacct is how submitit, behind launcher=slurm, learns that a job was cancelled or timed out;
#   * a PostgreSQL server on loopback with a role and database for Optuna's RDB storage.
# Safe to run again: whatever already runs is reused as it is, and the same three lines come out.
#
# stdout carries exactly three lines, for `eval "$(make -s --no-print-directory cluster-up)"`:
#   OPTUNA_STORAGE=postgresql://taskvec@127.0.0.1:<port>/taskvec
#   PGPASSFILE=/etc/taskvec-ir/optuna.pgpass
#   SLURM_PARTITION=debug
# The URL holds no password (taskvec-ir refuses one): libpq reads it from the password file PGPASSFILE names.
# Everything else (progress, apt, errors) goes to stderr.
#
# Exit codes: 0 ready; 77 not root (callers skip the cluster tests on it); anything else is a failure.
# Debian 12 packages: SLURM 22.05, munge 0.5, MariaDB 10.11, PostgreSQL 15. No systemd needed.
set -euo pipefail

# Keep stdout for the two result lines only: every command below writes to stderr unless it uses fd 3.
exec 3>&1 1>&2

PARTITION=debug
PG_ROLE=taskvec
PG_DB=taskvec
# The password is made once per machine and kept here (root only), so re-runs print the same URL
# without a password living in the repository.
PG_PASSWORD_FILE=/etc/taskvec-ir/optuna-db-password
PG_PASSFILE=/etc/taskvec-ir/optuna.pgpass  # the same password as libpq reads it: host:port:database:user:password
SLURMDBD_PASSWORD_FILE=/etc/taskvec-ir/slurmdbd-db-password
SLURM_CONF=/etc/slurm/slurm.conf
SLURMDBD_CONF=/etc/slurm/slurmdbd.conf
# This line marks a slurm.conf as ours; a file without it belongs to someone else and is never replaced.
CONF_MARK="# Written by taskvec-ir scripts/cluster-up.sh"

# shellcheck source=scripts/cluster-common.sh
source "$(dirname "$0")/cluster-common.sh"

# Starting daemons, writing /etc and installing packages all need root; without it, say so in one line.
if [[ $(id -u) -ne 0 ]]; then
    say "needs root (starts slurmctld, slurmd, munged and PostgreSQL as system services); skipping"
    exit 77
fi

# ---------------------------------------------------------------------------------------------------
# Packages. Installed only when a program is missing, so a warm re-run costs no apt time.
missing=()
for prog in munged slurmctld slurmd slurmdbd sinfo sacct mariadbd pg_ctlcluster; do
    command -v "$prog" >/dev/null || missing+=("$prog")
done
if ((${#missing[@]})); then
    say "installing slurm-wlm slurmdbd munge mariadb-server postgresql (missing: ${missing[*]})"
    apt_log=$(mktemp)
    if ! { apt-get update -qq &&
           DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm slurmdbd munge mariadb-server postgresql; } \
           >"$apt_log" 2>&1; then
        cat "$apt_log"
        die "apt-get failed (log above)"
    fi
    rm -f "$apt_log"
fi

# ---------------------------------------------------------------------------------------------------
# munge: SLURM's daemons and clients authenticate each other with credentials signed by this key.
# Debian's package leaves a 128-byte key; we want 1024 random bytes. Replacing it restarts munged once
# (the key is read at start); a 1024-byte key already in place is kept, whoever made it.
if [[ $(stat -c %s /etc/munge/munge.key 2>/dev/null || echo 0) -ne 1024 ]]; then
    stop_daemon /run/munge/munged.pid "munged (to change its key)"
    say "creating a 1024-byte /etc/munge/munge.key"
    install -d -o munge -g munge -m 700 /etc/munge
    (umask 077 && head -c 1024 /dev/urandom >/etc/munge/munge.key)
fi
# munged refuses a key that others can read or write.
chown munge:munge /etc/munge/munge.key
chmod 400 /etc/munge/munge.key
if running /run/munge/munged.pid; then
    say "munged already running"
else
    say "starting munged"
    # /run is a tmpfs without an init system to recreate the socket folder after a reboot.
    install -d -o munge -g munge -m 755 /run/munge
    detached runuser -u munge -- /usr/sbin/munged || die "munged did not start (see $DAEMON_LOG)"
    wait_until 10 munge -n || die "munged is not answering (see /var/log/munge/munged.log)"
fi

# ---------------------------------------------------------------------------------------------------
# Accounting: slurmdbd keeps every job's final state (COMPLETED, CANCELLED, TIMEOUT, ...) in MariaDB, where
# sacct reads it. Without it, a job that ends without writing its result (cancelled, killed at its time
# limit) is never seen to end by submitit, and a sweep waits for it forever. MariaDB listens on loopback
# only (Debian's default bind-address); slurmdbd reaches it through its socket.
if running /run/mysqld/mysqld.pid mariadbd; then
    say "MariaDB already running"
else
    say "starting MariaDB"
    detached /etc/init.d/mariadb start || die "MariaDB did not start (see $DAEMON_LOG)"
fi
wait_until 30 mariadb -u root -e 'select 1' || die "MariaDB is not answering (see /var/log/mysql)"
if [[ ! -s $SLURMDBD_PASSWORD_FILE ]]; then
    install -d -m 700 "$(dirname "$SLURMDBD_PASSWORD_FILE")"
    (umask 077 && head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$SLURMDBD_PASSWORD_FILE")
fi
dbd_password=$(cat "$SLURMDBD_PASSWORD_FILE")
mariadb -u root <<SQL
create database if not exists slurm_acct_db;
create user if not exists 'slurm'@'localhost' identified by '$dbd_password';
alter user 'slurm'@'localhost' identified by '$dbd_password';
grant all on slurm_acct_db.* to 'slurm'@'localhost';
SQL
new_dbd_conf=$(mktemp)
cat >"$new_dbd_conf" <<EOF
$CONF_MARK
AuthType=auth/munge
DbdHost=localhost
DbdAddr=127.0.0.1
SlurmUser=root
PidFile=/run/slurmdbd.pid
LogFile=/var/log/slurm/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=$dbd_password
StorageLoc=slurm_acct_db
EOF
if [[ -f $SLURMDBD_CONF ]] && ! grep -qxF "$CONF_MARK" "$SLURMDBD_CONF"; then
    rm -f "$new_dbd_conf"
    die "$SLURMDBD_CONF was not written by this script; leaving that SLURM alone"
fi
install -d /etc/slurm /var/log/slurm
if ! cmp -s "$new_dbd_conf" "$SLURMDBD_CONF"; then
    stop_daemon /run/slurmdbd.pid "slurmdbd (slurmdbd.conf changed)"
    say "writing $SLURMDBD_CONF"
    # slurmdbd refuses a configuration that others can read (it holds a password).
    install -m 600 "$new_dbd_conf" "$SLURMDBD_CONF"
fi
rm -f "$new_dbd_conf"
if running /run/slurmdbd.pid; then
    say "slurmdbd already running"
else
    say "starting slurmdbd"
    detached slurmdbd || die "slurmdbd did not start (see $DAEMON_LOG)"
fi
dbd_listening() { : </dev/tcp/127.0.0.1/6819; }  # slurmdbd's default port (DbdPort)
wait_until 30 dbd_listening || die "slurmdbd is not answering (see /var/log/slurm/slurmdbd.log)"

# ---------------------------------------------------------------------------------------------------
# slurm.conf. Rendered in full every run and compared with the file in place: identical means the
# running daemons are left alone; a difference (a newer version of this script) restarts them.
host=$(hostname -s)
cpus=$(nproc)
if [[ -f $SLURM_CONF ]] && ! grep -qxF "$CONF_MARK" "$SLURM_CONF"; then
    die "$SLURM_CONF was not written by this script; leaving that SLURM alone"
fi
# RealMemory must not exceed what slurmd finds, or the node is drained ("Low RealMemory"); staying
# below the memory free now also keeps jobs from pushing the machine into swap or the OOM killer.
# The value chosen on the first run is kept, so that re-runs render the same file.
real_mem=$(sed -n 's/^NodeName=.* RealMemory=\([0-9]*\).*/\1/p' "$SLURM_CONF" 2>/dev/null || true)
if [[ -z $real_mem ]]; then
    avail_mb=$(awk '/^MemAvailable:/ {print int($2 / 1024)}' /proc/meminfo)
    real_mem=$((avail_mb * 9 / 10 / 1024 * 1024))   # 90% of free, whole GiB
    ((real_mem >= 1024)) || die "less than ~1.2 GiB of memory free (${avail_mb} MB)"
fi
# With CR_Core_Memory memory is a consumable: a job that asks for none would otherwise be given the
# whole node's memory and run alone. An equal share per CPU lets one-CPU jobs run side by side.
def_mem_per_cpu=$((real_mem / cpus))

new_conf=$(mktemp)
cat >"$new_conf" <<EOF
$CONF_MARK
# A one-node test cluster for taskvec-ir's cluster tests; re-run the script rather than editing this.
ClusterName=taskvec
# The explicit loopback address spares SLURM a dependency on how this machine's name resolves.
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log

# No cgroups here (containers, no systemd): track job processes by parent pid and bind nothing.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# Job accounting in slurmdbd (above): sacct reports every job's final state. No per-step resource sampling.
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MpiDefault=none
SwitchType=switch/none
# No mail program here: /bin/mail (the default) is missing and slurmctld logs an error at each start.
MailProg=/bin/true

# Timing, tuned for tests that wait on jobs:
# Seconds between SIGTERM and SIGKILL when a job is cancelled or hits its limit (default 30).
KillWait=2
# Minutes a job may run past its --time before it is killed (0 = none, spelled out on purpose).
# slurmctld itself tests time limits only every 30 s (compiled in, no setting), so a job is killed
# 0-30 s after its limit, plus KillWait if it ignores SIGTERM.
OverTimeLimit=0
# Seconds a finished job at least stays in slurmctld's memory, where 'squeue -t all' and 'scontrol
# show job' still report its final state and reason (default 300; purged by a sweep every 60 s, so
# 120-180 s). Without accounting this is the only record, so it must outlast a poller's interval;
# shorter keeps the job list small in long test sessions.
MinJobAge=120
# A node that was DOWN (slurmd stopped, machine rebooted) returns to service as soon as its slurmd
# registers again, instead of waiting for an 'scontrol update ... state=resume'.
ReturnToService=2
DefMemPerCPU=$def_mem_per_cpu

NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$real_mem State=UNKNOWN
PartitionName=$PARTITION Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF

if cmp -s "$new_conf" "$SLURM_CONF"; then
    rm -f "$new_conf"
else
    # A changed file only takes effect after a restart (node and select settings ignore reconfigure).
    stop_daemon /run/slurmd.pid "slurmd (slurm.conf changed)"
    stop_daemon /run/slurmctld.pid "slurmctld (slurm.conf changed)"
    say "writing $SLURM_CONF"
    install -d /etc/slurm
    install -m 644 "$new_conf" "$SLURM_CONF"
    rm -f "$new_conf"
fi
install -d /var/spool/slurmctld /var/spool/slurmd /var/log/slurm

if running /run/slurmctld.pid; then
    say "slurmctld already running"
else
    say "starting slurmctld"
    detached slurmctld || die "slurmctld did not start (see $DAEMON_LOG)"
    wait_until 30 scontrol ping || die "slurmctld is not answering (see /var/log/slurm/slurmctld.log)"
fi
if running /run/slurmd.pid; then
    say "slurmd already running"
else
    say "starting slurmd"
    detached slurmd || die "slurmd did not start (see $DAEMON_LOG)"
fi
# The node is usable once slurmctld sees it idle (or busy with jobs from an earlier session).
node_ready() { [[ $(sinfo -h -n "$host" -p "$PARTITION" -o %T) =~ ^(idle|mixed|allocated|completing)$ ]]; }
if ! wait_until 30 node_ready; then
    sinfo -N -l >&2
    die "node $host is not idle in partition $PARTITION after 30 s (see /var/log/slurm/slurmd.log)"
fi

# ---------------------------------------------------------------------------------------------------
# PostgreSQL: the Debian cluster named "main" of the newest installed version, created if absent.
pg_version=$(pg_main_version)
if [[ -z $pg_version ]]; then
    pg_version=$(find /usr/lib/postgresql -mindepth 1 -maxdepth 1 -printf '%f\n' | sort -V | tail -n 1)
    say "creating PostgreSQL cluster $pg_version/main"
    pg_createcluster "$pg_version" main
fi
# Loopback only: the role has a password, but nothing outside this machine needs the database.
# Debian leaves listen_addresses unset, which means 'localhost'; only a cluster changed by hand is
# set back (and restarted if running, since the setting takes effect only at start).
listen=$(pg_conftool -s "$pg_version" main show listen_addresses 2>/dev/null || echo localhost)
if [[ $listen != localhost ]]; then
    say "PostgreSQL: listen_addresses was '$listen'; setting it to localhost"
    pg_conftool "$pg_version" main set listen_addresses localhost
    if [[ $(pg_status "$pg_version") == online ]]; then detached pg_ctlcluster "$pg_version" main restart; fi
fi
if [[ $(pg_status "$pg_version") == online ]]; then
    say "PostgreSQL $pg_version/main already running"
else
    say "starting PostgreSQL $pg_version/main"
    detached pg_ctlcluster "$pg_version" main start || die "PostgreSQL did not start (see $DAEMON_LOG)"
fi
pg_port=$(pg_conftool -s "$pg_version" main show port)
wait_until 30 pg_isready -q -h 127.0.0.1 -p "$pg_port" || die "PostgreSQL is not accepting connections on 127.0.0.1:$pg_port"
# Hex keeps the password safe to paste into a URL unescaped.
if [[ ! -s $PG_PASSWORD_FILE ]]; then
    install -d -m 700 "$(dirname "$PG_PASSWORD_FILE")"
    (umask 077 && head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$PG_PASSWORD_FILE")
fi
pg_password=$(cat "$PG_PASSWORD_FILE")

as_postgres() { runuser -u postgres -- psql -p "$pg_port" -X -q -v ON_ERROR_STOP=1 "$@"; }
# Refuse to hand out a URL for a server that also listens beyond loopback. The running server's own
# value counts (a command-line override would not show in postgresql.conf), and unlike `ss` it needs
# no iproute2, which slim images lack.
listening=$(as_postgres -Atc 'show listen_addresses')
[[ $listening =~ ^(localhost|127\.0\.0\.1|::1)(,\ ?(localhost|127\.0\.0\.1|::1))*$ ]] ||
    die "PostgreSQL listens on '$listening', not on loopback only"
# Log in the way Optuna will (TCP, password), so the URL printed below is known to work.
can_log_in() {
    PGPASSWORD=$pg_password PGCONNECT_TIMEOUT=5 psql -X -h 127.0.0.1 -p "$pg_port" -U "$PG_ROLE" \
        -d "$PG_DB" -Atc 'select 1' >/dev/null 2>&1
}
if ! can_log_in; then
    if [[ -z $(as_postgres -Atc "select 1 from pg_roles where rolname = '$PG_ROLE'") ]]; then
        say "PostgreSQL: creating role $PG_ROLE"
        as_postgres -c "create role $PG_ROLE login password '$pg_password'"
    else
        # The role exists but the password file was remade (or the role changed by hand).
        say "PostgreSQL: setting the password of role $PG_ROLE"
        as_postgres -c "alter role $PG_ROLE login password '$pg_password'"
    fi
    if [[ -z $(as_postgres -Atc "select 1 from pg_database where datname = '$PG_DB'") ]]; then
        # As owner, the role may create tables in the public schema (PostgreSQL 15 no longer lets
        # every role do so); Optuna creates its own tables on first use.
        say "PostgreSQL: creating database $PG_DB"
        as_postgres -c "create database $PG_DB owner $PG_ROLE"
    fi
    can_log_in || die "cannot log in to PostgreSQL as $PG_ROLE over 127.0.0.1:$pg_port"
fi

# libpq ignores a password file that others may read.
(umask 077 && echo "127.0.0.1:$pg_port:$PG_DB:$PG_ROLE:$pg_password" >"$PG_PASSFILE.new" && mv "$PG_PASSFILE.new" "$PG_PASSFILE")

say "ready: SLURM partition $PARTITION on $host ($cpus CPUs, ${real_mem} MB), PostgreSQL $pg_version on 127.0.0.1:$pg_port"
echo "OPTUNA_STORAGE=postgresql://$PG_ROLE@127.0.0.1:$pg_port/$PG_DB" >&3
echo "PGPASSFILE=$PG_PASSFILE" >&3
echo "SLURM_PARTITION=$PARTITION" >&3
