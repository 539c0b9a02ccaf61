#!/usr/bin/env bash
# `exprun slurm submit` against a real Slurm cluster (docs/distributed.md, "A sweep on Slurm"):
# a single-node cluster of Debian's slurm-wlm and munge, started here in a temporary directory,
# runs a sweep of three trials as a job array, each trial trained by two ranks (--ranks 2,
# started by srun as one data-parallel launch). One array task gets SIGUSR1, as Slurm's early
# warning (`--signal=USR1@LEAD`) would send it; exprun saves, requeues its own array task with
# `scontrol requeue`, and the rerun resumes the trial (`--resume=auto`). Every trial completes.
#
#   tests/slurm/slurm_cluster_test.sh [EXPRUN_EXE [SCRATCH_DIR]]
#
# EXPRUN_EXE (the argument or the variable) is the exprun executable; SCRATCH_DIR (default
# $TMPDIR or /tmp) holds the temporary directory. KEEP=1 keeps that directory for a look.
# Nothing outside it is written: no /etc/slurm, /etc/munge or /run. The daemons are stopped by
# pid when the script exits, also on failure. Slurm's daemons need root (they start the jobs
# as their user), so the test does too.
set -euo pipefail

exe="${1:-${EXPRUN_EXE:-}}"
scratch="${2:-${TMPDIR:-/tmp}}"
PATH="$PATH:/usr/sbin:/sbin"

fail() {
  echo "slurm_cluster_test: FAIL: $*" >&2
  exit 1
}
note() { echo "slurm_cluster_test: $(date -u +%H:%M:%S) $*"; }

[[ -n "$exe" ]] || fail "no exprun executable: give its path as the first argument or in EXPRUN_EXE"
[[ -x "$exe" ]] || fail "$exe is not an executable"
exe="$(cd "$(dirname "$exe")" && pwd)/$(basename "$exe")"

missing=()
for tool in munged slurmctld slurmd sbatch squeue scontrol scancel sinfo srun python3; do
  command -v "$tool" >/dev/null || missing+=("$tool")
done
if ((${#missing[@]})); then
  fail "missing ${missing[*]}: this test runs a Slurm cluster of its own; run scripts/setup.sh, which installs slurm-wlm and munge"
fi
[[ "$(id -u)" == 0 ]] || fail "Slurm's daemons run jobs as their own user and need root; run the test as root"

# ---------------------------------------------------------------- the cluster's directory
# Unix socket paths (munged's, slurmd's per step) must stay under 108 bytes: a deep scratch
# directory gives way to $TMPDIR.
mkdir -p "$scratch"
scratch="$(cd "$scratch" && pwd)"
((${#scratch} <= 60)) || scratch="${TMPDIR:-/tmp}"
tmp="$(mktemp -d "$scratch/exprun-slurm.XXXXXX")"
# munged refuses a socket whose directories are not searchable by everyone.
chmod 755 "$tmp"
mkdir -m 755 "$tmp/munge" "$tmp/slurm" "$tmp/slurm/state" "$tmp/slurm/spool" "$tmp/log"

pids=()      # the daemons, in the order started
job_id=""

stop_daemons() {
  local status=$?
  set +e
  if [[ -n "$job_id" ]] && ((${#pids[@]} >= 2)); then
    # Whatever is left of the sweep, so that slurmd leaves no job behind.
    scancel "$job_id" 2>/dev/null
    for _ in $(seq 20); do
      [[ -z "$(squeue -h -j "$job_id" -t PD,R,CG,CF,S,RQ 2>/dev/null)" ]] && break
      sleep 0.5
    done
  fi
  local i pid
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    pid="${pids[i]}"
    kill -TERM "$pid" 2>/dev/null || continue
    for _ in $(seq 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
  done
  if [[ -n "${KEEP:-}" || $status -ne 0 ]]; then
    echo "slurm_cluster_test: kept $tmp"
  else
    rm -rf "$tmp"
  fi
  exit "$status"
}
trap stop_daemons EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

show_logs() {
  local f
  for f in "$tmp"/log/* "$tmp"/sweep/slurm/trial-*.log; do
    [[ -f "$f" ]] || continue
    echo "----- $f (last 40 lines)" >&2
    tail -n 40 "$f" >&2
  done
}
# The reason first as well: a log shown only in part (CI keeps the head and the tail of a
# test's output) would otherwise lose it.
fail_with_logs() {
  echo "slurm_cluster_test: FAIL: $* (the cluster's and the trials' logs follow)" >&2
  show_logs
  fail "$@"
}

# ---------------------------------------------------------------- munge
dd if=/dev/urandom of="$tmp/munge/munge.key" bs=1024 count=1 status=none
chmod 0400 "$tmp/munge/munge.key"
socket="$tmp/munge/socket"
munged --foreground --socket="$socket" --key-file="$tmp/munge/munge.key" \
  --pid-file="$tmp/munge/munged.pid" --log-file="$tmp/log/munged.log" \
  --seed-file="$tmp/munge/munged.seed" >>"$tmp/log/munged.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do
  [[ -S "$socket" ]] && break
  kill -0 "${pids[0]}" 2>/dev/null || fail_with_logs "munged exited"
  sleep 0.1
done
[[ -S "$socket" ]] || fail_with_logs "munged made no socket $socket in 5 s"

# ---------------------------------------------------------------- slurm.conf
read -r ctld_port slurmd_port < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(2)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))')
host="$(hostname -s)"
# NodeName=host CPUs=... Boards=... (the first line of slurmd -C), without RealMemory: the
# memory is not scheduled (CR_Core), and a value above what slurmd finds would drain the node.
node="$(slurmd -C | head -n 1 | sed -E 's/ RealMemory=[0-9]+//')"
[[ "$node" == "NodeName=$host "* ]] || fail "slurmd -C printed '$node', expected NodeName=$host ..."
conf="$tmp/slurm/slurm.conf"
cat >"$conf" <<EOF
# A one-node cluster for tests/slurm/slurm_cluster_test.sh; everything in $tmp.
ClusterName=exprun-test
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
# A requeued job starts again only when its credential has expired (cred_expire, default 120 s).
AuthInfo=socket=$socket,cred_expire=20
StateSaveLocation=$tmp/slurm/state
SlurmdSpoolDir=$tmp/slurm/spool
MailProg=/bin/true
SlurmctldPidFile=$tmp/slurm/slurmctld.pid
SlurmdPidFile=$tmp/slurm/slurmd.pid
SlurmctldLogFile=$tmp/log/slurmctld.log
SlurmdLogFile=$tmp/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
PlugStackConfig=$tmp/slurm/plugstack.conf
TmpFS=$tmp/slurm/spool
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
SwitchType=switch/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
JobRequeue=1
ReturnToService=2
MinJobAge=300
KillWait=5
InactiveLimit=0
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2,bf_interval=1
$node NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
: >"$tmp/slurm/plugstack.conf"
export SLURM_CONF="$conf"  # for sbatch, squeue, scontrol, scancel: exprun's and these
# Run inside a Slurm job of another cluster, its variables would confuse sbatch, srun and exprun.
while read -r var; do
  [[ "$var" == SLURM_CONF ]] || unset "$var"
done < <(compgen -e | grep '^SLURM_' || true)

slurmctld -D -f "$conf" >>"$tmp/log/slurmctld.out" 2>&1 &
pids+=($!)
slurmd -D -f "$conf" -N "$host" >>"$tmp/log/slurmd.out" 2>&1 &
pids+=($!)

ready=""
for _ in $(seq 60); do
  for pid in "${pids[@]}"; do
    kill -0 "$pid" 2>/dev/null || fail_with_logs "a daemon (pid $pid) exited while starting"
  done
  if scontrol ping >/dev/null 2>&1 &&
    [[ "$(sinfo -h -n "$host" -o %t 2>/dev/null)" == idle ]]; then
    ready=1
    break
  fi
  sleep 0.5
done
[[ -n "$ready" ]] || fail_with_logs "the node did not become idle in 30 s: $(sinfo 2>&1)"
note "cluster up (slurmctld port $ctld_port, slurmd port $slurmd_port, pids ${pids[*]})"

# ---------------------------------------------------------------- the sweep
# test::TinyExperiment (tests/support/test_support.cpp), with 48 training images and three
# epochs, so that a trial trains for some seconds: time to signal it in the middle.
cat >"$tmp/sweep.toml" <<EOF
[experiment]
name = "tiny"
seed = 3
threads = 1
output = "$tmp/results"
description = "exprun test: tiny synthetic sweep on a Slurm cluster"

[defaults]
device = "cpu"

[defaults.data]
plugin = "synthetic_ceph"
image_size = [64, 80]
sigma = 1.5
workers = 1
train_count = 48
valid_count = 8

[defaults.model]
plugin = "hrnet"
width = 4
num_modules = [1, 1, 1]
num_blocks = 1
stem_blocks = 1

[defaults.loss]
plugin = "mse"

[defaults.memory]
effective_batch = 4
micro_batch = 2
strategies = ["gradient_accumulation"]

[defaults.optimizer]
name = "adam"
lr = 2e-3

[[stage]]
name = "train"
epochs = 3

[sweep.zip]
"optimizer.lr" = [0.001, 0.002, 0.003]
EOF

# `scontrol requeue` of a running job makes Slurm send SIGTERM to the job's processes, the
# scontrol that exprun started among them, while it may still wait for slurmctld's answer (a
# busy machine). exprun must start it with SIGTERM ignored, or it reports a requeue that
# happened as failed. This scontrol answers 2 s late, after the real one is done, so the
# SIGTERM always comes first; everything else goes straight to the real scontrol.
real_scontrol="$(command -v scontrol)"
mkdir -m 755 "$tmp/bin"
cat >"$tmp/bin/scontrol" <<EOF
#!/bin/bash
"$real_scontrol" "\$@"
status=\$?
[[ "\$1" == requeue ]] && sleep 2
exit \$status
EOF
chmod 755 "$tmp/bin/scontrol"
export PATH="$tmp/bin:$PATH"  # sbatch hands it on to the job, and so to exprun

sweep="$tmp/sweep"
cd "$tmp"
# A limit of 10 minutes: Slurm's own early warning (120 s before it, up to 60 s earlier) comes
# long after the sweep is done, so the only SIGUSR1 is the one sent below.
out="$("$exe" slurm submit "$tmp/sweep.toml" --sweep-dir "$sweep" --time 10 --ranks 2 -- --partition=debug 2>&1)" ||
  fail_with_logs "exprun slurm submit failed: $out"
echo "$out"
job_id="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["job_id"])' "$sweep/slurm/job.json")"
[[ "$out" == *"submitted Slurm job $job_id: 3 trial(s) of tiny (array 0-2) into $sweep"* ]] ||
  fail "submit printed no 'submitted Slurm job $job_id: 3 trial(s) ...' line"
note "job $job_id submitted"

# ---------------------------------------------------------------- the early warning
# Array task 1 gets SIGUSR1 once its stage has started (exprun's handlers are in place by
# then), a few seconds before the trial would end. scancel --signal without --batch or --full
# signals the job's steps, that is the exprun that srun started, not the batch shell: what
# Slurm's --signal=USR1@LEAD does.
signalled=1
task="${job_id}_$signalled"
log="$sweep/slurm/trial-$signalled.log"
training=""
for _ in $(seq 600); do
  if grep -q "stage train on" "$log" 2>/dev/null; then
    training=1
    break
  fi
  if grep -q "error" "$log" 2>/dev/null; then
    fail_with_logs "array task $task failed before it trained"
  fi
  sleep 0.2
done
[[ -n "$training" ]] || fail_with_logs "array task $task did not start training in 120 s"
scancel --signal=USR1 "$task" || fail_with_logs "scancel --signal=USR1 $task failed"
note "sent SIGUSR1 to $task"

# ---------------------------------------------------------------- wait for the sweep
active='^(PENDING|RUNNING|CONFIGURING|COMPLETING|REQUEUED|REQUEUE_HOLD|REQUEUE_FED|RESIZING|SUSPENDED|SIGNALING|STAGE_OUT)$'
last=""
done_=""
for _ in $(seq 300); do
  if states="$(squeue -h -r -j "$job_id" -o '%i %T' 2>&1)"; then
    line="$(sort <<<"$states" | tr '\n' ' ')"
    line="${line% }"
    [[ "$line" != "$last" ]] && note "squeue: ${line:-(nothing queued or running)}"
    last="$line"
    busy=""
    while read -r _ state; do
      [[ "$state" =~ $active ]] && busy=1
    done <<<"$states"
    if [[ -z "$busy" ]]; then
      done_=1
      break
    fi
  else
    note "squeue failed: $states"
  fi
  sleep 1
done
[[ -n "$done_" ]] || fail_with_logs "job $job_id still has tasks queued or running after 300 s: $last"
note "job $job_id done"

# ---------------------------------------------------------------- checks
status_out="$("$exe" slurm status "$sweep" 2>&1)" || fail_with_logs "exprun slurm status failed: $status_out"
echo "$status_out"
[[ "$status_out" == *"sweep $sweep: 3 trial(s), 3 completed; sweep completed"* ]] ||
  fail_with_logs "slurm status does not say 3 trial(s), 3 completed; sweep completed"
[[ "$status_out" == *"Slurm job $job_id, states from squeue"* ]] ||
  fail_with_logs "slurm status does not follow job $job_id with squeue"
# trial, optimizer.lr, status, slurm (- : no longer queued), host, pid, best MRE
for t in 0 1 2; do
  grep -Eq "^$t +0\.00$((t + 1)) +completed +- +$host +[0-9]+ +[0-9.]+ mm$" <<<"$status_out" ||
    fail_with_logs "slurm status: no row 'trial $t completed, - in the slurm column, on $host'"
done

# The first attempt: interrupted, saved, requeued by exprun itself. The second: resumed.
expect_in_log() {
  grep -qF -- "$1" "$log" || fail_with_logs "$log: no '$1'"
}
expect_in_log "sweep interrupted (SIGUSR1"
expect_in_log "DUE TO JOB REQUEUE"
# The requeue cancels the running task with SIGTERM while exprun is still stopping; exprun
# ignores a SIGTERM after Slurm's warning, says that scontrol succeeded and exits 138.
expect_in_log "exprun: requeued Slurm job $task: it continues from latest.pt"
if grep -q "task 0: Terminated" "$log"; then
  fail_with_logs "$log: the requeue's SIGTERM killed exprun instead of letting it exit 138"
fi
expect_in_log "array task $signalled, restart 1,"
expect_in_log "exprun: sweep trial $signalled (1/1): resuming"
expect_in_log "continuing from $sweep/trial-$(printf %03d "$signalled")/train/checkpoints/latest.pt"
for t in 0 2; do
  if grep -q "SIGUSR1\|requeued" "$sweep/slurm/trial-$t.log"; then
    fail_with_logs "trial-$t.log: trial $t was interrupted too"
  fi
done

python3 - "$sweep" "$signalled" <<'EOF' || fail_with_logs "the sweep's JSON files are not as expected"
import json, pathlib, sys

sweep, signalled = pathlib.Path(sys.argv[1]), int(sys.argv[2])
ok = True

def check(cond, what):
    global ok
    if not cond:
        print(f"slurm_cluster_test: {what}", file=sys.stderr)
        ok = False

s = json.loads((sweep / "sweep.json").read_text())
check(s.get("status") == "completed", f"sweep.json status {s.get('status')!r}, expected 'completed'")
trials = s.get("trials", [])
check(len(trials) == 3, f"sweep.json has {len(trials)} trials, expected 3")
for t in trials:
    check(t.get("status") == "completed", f"sweep.json trial {t.get('index')}: status {t.get('status')!r}")
check(s.get("finished_at") is not None, "sweep.json has no finished_at")
for t in trials:
    check((t.get("wall_time_s") or 0) > 0, f"sweep.json trial {t.get('index')}: wall_time_s {t.get('wall_time_s')!r}")
for i in range(3):
    r = json.loads((sweep / f"trial-{i:03d}" / "report.json").read_text())
    check(r.get("status") == "completed", f"trial {i} report.json status {r.get('status')!r}")
    ranks = r.get("environment", {}).get("distributed", {})
    check(ranks.get("world_size") == 2 and ranks.get("launcher") == "slurm",
          f"trial {i} report.json environment.distributed {ranks!r}: expected 2 Slurm ranks")
    # The sweep's entry sums up the trial's report: every epoch, the same best MRE.
    if i < len(trials):
        stages, reported = trials[i].get("stages", []), r.get("stages", [])
        check(len(stages) == 1 and len(reported) == 1, f"trial {i}: stages {stages!r}")
        if len(stages) == 1 and len(reported) == 1:
            check(stages[0].get("epochs_completed") == 3,
                  f"trial {i}: sweep.json epochs_completed {stages[0].get('epochs_completed')!r}")
            mre = reported[0].get("best", {}).get("overall", {}).get("mre")
            check(mre is not None and stages[0].get("best_val_mre_mm") == mre,
                  f"trial {i}: sweep.json best_val_mre_mm {stages[0].get('best_val_mre_mm')!r}, "
                  f"report.json best MRE {mre!r}")
    if i == signalled:
        resumed = r["stages"][0].get("resumed", []) if r.get("stages") else []
        check(len(resumed) == 1 and resumed[0].get("from") == "train/checkpoints/latest.pt",
              f"trial {i} (signalled): stage resumed {resumed!r}, expected once from latest.pt")
    resumes = r.get("resumes", [])
    if i == signalled:
        check(len(resumes) == 1 and resumes[0].get("previous_status") == "interrupted",
              f"trial {i} (signalled) report.json resumes: {resumes!r}, expected one of an interrupted run")
    else:
        check(not resumes, f"trial {i} report.json resumes: {resumes!r}, expected none")
sys.exit(0 if ok else 1)
EOF

note "PASS: 3 trials completed, trial $signalled interrupted by SIGUSR1, requeued and resumed"
