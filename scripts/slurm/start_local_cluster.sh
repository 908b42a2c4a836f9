#!/usr/bin/env bash
# Start a one-node SLURM cluster on this machine (Debian's slurm-wlm + munge), for tests and CI.
#
#   scripts/slurm/start_local_cluster.sh            # start (or confirm it is running)
#   export SLURM_CONF=/tmp/brainmis-slurm/slurm.conf # printed on the last line, for sbatch/squeue
#   scripts/slurm/stop_local_cluster.sh             # stop what this script started
#
# Everything lives under BRAINMIS_SLURM_DIR (default /tmp/brainmis-slurm): its own munge key and
# socket, slurm.conf, state, spool, logs and PID files. Nothing in /etc is touched, so a real
# SLURM installation on the same machine is left alone. Running it again while the daemons are
# up changes nothing (idempotent). Settings (environment variables):
#   BRAINMIS_SLURM_DIR   state folder                    (/tmp/brainmis-slurm)
#   BRAINMIS_SLURM_CPUS  CPUs the node offers to jobs    (2)
#   BRAINMIS_SLURM_PORT  slurmctld port; slurmd uses +1  (6817)
set -euo pipefail

state_dir="${BRAINMIS_SLURM_DIR:-/tmp/brainmis-slurm}"
cpus="${BRAINMIS_SLURM_CPUS:-2}"
ctld_port="${BRAINMIS_SLURM_PORT:-6817}"
node_port=$((ctld_port + 1))
node_name="$(hostname -s)"
user_name="$(id -un)"

for binary in munged mungekey slurmctld slurmd sbatch sinfo; do
    if ! command -v "$binary" >/dev/null 2>&1 && [[ ! -x "/usr/sbin/$binary" ]]; then
        echo "start_local_cluster: '$binary' not found; install Debian's slurm-wlm and munge" >&2
        exit 3
    fi
done
export PATH="$PATH:/usr/sbin"

alive() {  # alive PIDFILE: the process named in PIDFILE is running
    [[ -s "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null
}

mkdir -p "$state_dir"/{munge,ctld,spool,log,run}
chmod 0700 "$state_dir/munge"
export SLURM_CONF="$state_dir/slurm.conf"

# --- munge: a key of our own, a socket of our own ---------------------------------------------
if [[ ! -s "$state_dir/munge/munge.key" ]]; then
    mungekey --create --keyfile="$state_dir/munge/munge.key"
    chmod 0600 "$state_dir/munge/munge.key"
fi
if ! alive "$state_dir/run/munged.pid"; then
    munged --force \
        --key-file="$state_dir/munge/munge.key" \
        --socket="$state_dir/munge/munge.socket" \
        --pid-file="$state_dir/run/munged.pid" \
        --log-file="$state_dir/log/munged.log" \
        --seed-file="$state_dir/munge/munged.seed"
fi

# --- slurm.conf --------------------------------------------------------------------------------
cat > "$SLURM_CONF.new" <<CONF
# Written by scripts/slurm/start_local_cluster.sh: a one-node cluster for tests.
ClusterName=brainmis-local
SlurmctldHost=${node_name}(127.0.0.1)
SlurmctldPort=${ctld_port}
SlurmdPort=${node_port}
SlurmUser=${user_name}
SlurmdUser=${user_name}
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=${state_dir}/munge/munge.socket
StateSaveLocation=${state_dir}/ctld
SlurmdSpoolDir=${state_dir}/spool
SlurmctldPidFile=${state_dir}/run/slurmctld.pid
SlurmdPidFile=${state_dir}/run/slurmd.pid
SlurmctldLogFile=${state_dir}/log/slurmctld.log
SlurmdLogFile=${state_dir}/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2
MpiDefault=none
SwitchType=switch/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
JobRequeue=1
ReturnToService=2
MaxArraySize=10001
MinJobAge=600
KillWait=10
SlurmdParameters=config_overrides
NodeName=${node_name} NodeAddr=127.0.0.1 CPUs=${cpus} State=UNKNOWN
PartitionName=local Nodes=${node_name} Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
CONF
if [[ -f "$SLURM_CONF" ]] && cmp -s "$SLURM_CONF" "$SLURM_CONF.new"; then
    rm "$SLURM_CONF.new"
else
    mv "$SLURM_CONF.new" "$SLURM_CONF"
fi

# --- daemons -----------------------------------------------------------------------------------
if ! alive "$state_dir/run/slurmctld.pid"; then
    slurmctld -f "$SLURM_CONF"
fi
if ! alive "$state_dir/run/slurmd.pid"; then
    slurmd -f "$SLURM_CONF"
fi

# --- wait until the node takes jobs ------------------------------------------------------------
for _ in $(seq 1 60); do
    node_state="$(sinfo --noheader --nodes="$node_name" --format=%T 2>/dev/null || true)"
    case "$node_state" in
        idle*|mixed*|allocated*|completing*) break ;;
        down*|drain*)  # left over from an earlier session: bring it back
            scontrol update nodename="$node_name" state=resume >/dev/null 2>&1 || true ;;
    esac
    sleep 1
done
case "$node_state" in
    idle*|mixed*|allocated*|completing*) ;;
    *)
        echo "start_local_cluster: node '$node_name' not ready (state '$node_state');" \
             "see $state_dir/log/" >&2
        exit 1 ;;
esac
echo "export SLURM_CONF=$SLURM_CONF"
