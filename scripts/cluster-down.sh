#!/usr/bin/env bash
# Stops what cluster-up.sh started: slurmd, slurmctld, slurmdbd, MariaDB, munged and the PostgreSQL cluster "main".
# Configuration, the munge key, SLURM's saved state and the database stay, so cluster-up.sh brings
# the same servers back. Nothing running is fine (exit 0). Exit 77 when not root, as cluster-up.sh.
set -euo pipefail
# shellcheck source=scripts/cluster-common.sh
source "$(dirname "$0")/cluster-common.sh"

if [[ $(id -u) -ne 0 ]]; then
    say "needs root (stops slurmctld, slurmd, slurmdbd, MariaDB, munged and PostgreSQL); skipping"
    exit 77
fi

# With proctrack/linuxproc, job processes outlive a stopped slurmd; cancel the jobs first so that
# nothing of a test session keeps running unsupervised.
no_jobs() { [[ -z $(squeue -h -o %i) ]]; }
if running /run/slurmctld.pid && ! no_jobs; then
    say "cancelling the jobs still queued or running"
    squeue -h -o %i | xargs scancel
    # KillWait is 2 s: jobs that ignore SIGTERM are killed well within this.
    wait_until 20 no_jobs || say "some jobs did not end; stopping SLURM anyway"
fi
# slurmd before slurmctld, so that slurmctld saves the node as seen going down.
stop_daemon /run/slurmd.pid slurmd
stop_daemon /run/slurmctld.pid slurmctld
stop_daemon /run/slurmdbd.pid slurmdbd
if running /run/mysqld/mysqld.pid mariadbd; then
    say "stopping MariaDB"
    detached /etc/init.d/mariadb stop
fi
stop_daemon /run/munge/munged.pid munged

pg_version=$(pg_main_version)
if [[ -n $pg_version && $(pg_status "$pg_version") == online ]]; then
    say "stopping PostgreSQL $pg_version/main"
    detached pg_ctlcluster "$pg_version" main stop
fi
say "stopped"
