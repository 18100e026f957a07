#!/usr/bin/env bash
# slurm-local.sh - a real one-node Slurm cluster on this machine, for tests, CI and demos.
#
#   scripts/slurm-local.sh up      install (Debian packages, if missing), configure, start, wait for idle
#   scripts/slurm-local.sh status  say whether the cluster answers; exit 0 if it does, 3 if not
#   scripts/slurm-local.sh down    cancel its jobs and stop exactly the daemons `up` started
#
# Everything lives under one state directory ($HAWKEYE_SLURM_DIR, default /tmp/hawkeye-slurm): its own
# slurm.conf (SLURM_CONF), its own ports, its own munge daemon, socket and key, spool, state and logs.
# Nothing under /etc/slurm or /etc/munge is read or written, so it can run beside a system Slurm.
#
# `up` prints the path of an env file to source before using the cluster:
#     source "$(scripts/slurm-local.sh up)"        # or: source /tmp/hawkeye-slurm/slurm.env
# It sets SLURM_CONF and puts a tiny `sacct` stand-in first on PATH: without slurmdbd the real sacct
# fails, and submitit then cannot see failed or cancelled jobs; the stand-in answers submitit's
# `sacct -o JobID,State,NodeList --parsable2 -j ID` from `squeue -t all` (jobs stay listed for
# MinJobAge=600 s). tests/conftest.py (fixture `slurm_cluster`) reads that env file.
# When `up` fails it writes the reason to $HAWKEYE_SLURM_DIR/up.error and exits non-zero.
#
# Env knobs:
#   HAWKEYE_SLURM_DIR      state directory                    (default /tmp/hawkeye-slurm)
#   HAWKEYE_SLURM_PORT     slurmctld port; slurmd uses +1     (default 6917; Slurm's own default is 6817)
#   HAWKEYE_SLURM_CPUS     CPUs the node advertises; more than the real count is allowed so tiny
#                          array tasks run side by side      (default 8)
#   HAWKEYE_SLURM_TIMEOUT  seconds to wait for the node to become idle (default 60)
#   HAWKEYE_SLURM_PURGE=1  `down` also deletes the state directory (job state, logs)
set -euo pipefail

CMD=${1:-}
STATE=${HAWKEYE_SLURM_DIR:-/tmp/hawkeye-slurm}
PORT=${HAWKEYE_SLURM_PORT:-6917}
CPUS=${HAWKEYE_SLURM_CPUS:-8}
TIMEOUT=${HAWKEYE_SLURM_TIMEOUT:-60}
ETC=$STATE/etc RUN=$STATE/run LOG=$STATE/log BIN=$STATE/bin MUNGE=$STATE/munge
CONF=$ETC/slurm.conf
ENVFILE=$STATE/slurm.env
ERRFILE=$STATE/up.error
SOCK=$MUNGE/munge.socket
HOST=$(hostname -s)
PKGS=(munge slurmctld slurmd slurm-client)

log() { echo "[slurm-local] $*" >&2; }
die() {  # die REASON: record the reason for the tests' skip message, show the daemons' last log lines
  log "ERROR: $*"
  rm -f "$ENVFILE" 2>/dev/null  # no env file = not usable: the tests skip with the reason below
  mkdir -p "$STATE" 2>/dev/null && echo "$*" > "$ERRFILE" 2>/dev/null
  for f in "$LOG"/*.log "$MUNGE"/munged.log; do
    [ -s "$f" ] && { echo "--- tail of $f" >&2; tail -n 15 "$f" >&2; }
  done
  exit 1
}

# alive PIDFILE COMM: the pid in PIDFILE is a live, non-zombie COMM process. PID 1 in containers
# often reaps exited daemons lazily, so `kill -0` alone would count a zombie as running.
alive() {
  local pid st
  pid=$(cat "$1" 2>/dev/null) || return 1
  [[ $pid =~ ^[0-9]+$ ]] && [ -r "/proc/$pid/stat" ] || return 1
  st=$(sed -E 's/^.*\) ([A-Za-z]).*/\1/' "/proc/$pid/stat" 2>/dev/null) || return 1
  [ "$st" != Z ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$2" ]
}

wait_for() {  # wait_for SECONDS DESCRIPTION CMD...: poll CMD every 0.25 s
  local n=$(( $1 * 4 )) what=$2 i
  shift 2
  for ((i = 0; i < n; i++)); do "$@" >/dev/null 2>&1 && return 0; sleep 0.25; done
  die "timed out after ${n}x0.25 s waiting for $what"
}

stop_daemon() {  # stop_daemon NAME COMM PIDFILE: TERM, wait up to 15 s, then KILL; only this PID
  local name=$1 comm=$2 pidfile=$3 pid i
  if ! alive "$pidfile" "$comm"; then rm -f "$pidfile"; return 0; fi
  pid=$(cat "$pidfile")
  log "stopping $name (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 60; i++)); do alive "$pidfile" "$comm" || break; sleep 0.25; done
  if alive "$pidfile" "$comm"; then log "$name still alive after 15 s, SIGKILL"; kill -KILL "$pid" 2>/dev/null || true; sleep 0.5; fi
  rm -f "$pidfile"
}

node_state() { SLURM_CONF=$CONF sinfo -h -N -n "$HOST" -o '%T' 2>/dev/null | head -n1; }

install_packages() {
  local missing=() p created_policy=0
  for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  command -v apt-get >/dev/null || die "missing packages ${missing[*]} and no apt-get (not Debian/Ubuntu): install Slurm and munge by hand"
  log "installing ${missing[*]} (apt-get)"
  local t0=$SECONDS
  # Keep the packages' maintainer scripts from starting system daemons (there is no init system here,
  # and we start our own instances below).
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; created_policy=1
  fi
  export DEBIAN_FRONTEND=noninteractive
  local ok=1
  apt-get update -qq >"$LOG/apt.log" 2>&1 || ok=0
  [ $ok = 1 ] && { apt-get install -y -qq --no-install-recommends "${missing[@]}" >>"$LOG/apt.log" 2>&1 || ok=0; }
  [ $created_policy = 1 ] && rm -f /usr/sbin/policy-rc.d
  [ $ok = 1 ] || { tail -n 5 "$LOG/apt.log" >&2; die "apt-get could not install ${missing[*]} (see $LOG/apt.log)"; }
  log "installed in $((SECONDS - t0)) s"
}

write_if_changed() {  # write_if_changed PATH: stdin -> PATH unless identical; exit 0 if it changed
  local new
  new=$(mktemp "$1.XXXXXX")
  cat > "$new"
  if cmp -s "$new" "$1"; then rm -f "$new"; return 1; fi
  mv "$new" "$1"
  return 0
}

write_slurm_conf() {
  local real_cpus mem override=""
  real_cpus=$(nproc)
  mem=$(/usr/sbin/slurmd -C 2>/dev/null | sed -nE 's/.*RealMemory=([0-9]+).*/\1/p')
  [ -n "$mem" ] || die "slurmd -C did not report RealMemory (is slurmd installed?)"
  mem=$(( mem * 95 / 100 ))
  # config_overrides: the node advertises $CPUS even where the machine has fewer cores.
  [ "$CPUS" -gt "$real_cpus" ] && override="SlurmdParameters=config_overrides"
  write_if_changed "$CONF" <<EOF
# Generated by scripts/slurm-local.sh: a one-node test cluster. Edit the script, not this file.
ClusterName=hawkeye-local
SlurmctldHost=$HOST(127.0.0.1)
SlurmctldPort=$PORT
SlurmdPort=$((PORT + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
# own munge socket; a requeued job may start again after cred_expire+1 s (default 120 s)
AuthInfo=socket=$SOCK,cred_expire=5
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
# schedule every 1-2 s and start the next job at once (defaults wait up to 30 s between steps)
SchedulerParameters=bf_interval=1,sched_interval=2,batch_sched_delay=0
# a dependent whose dependency can never be met is cancelled instead of pending forever
DependencyParameters=kill_invalid_depend
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
KillWait=5
# finished jobs stay visible to squeue -t all (and to the sacct stand-in) for 10 minutes
MinJobAge=600
MailProg=/bin/true
$override
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/slurmd
SlurmctldPidFile=$RUN/slurmctld.pid
SlurmdPidFile=$RUN/slurmd.pid
SlurmctldLogFile=$LOG/slurmctld.log
SlurmdLogFile=$LOG/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
}

write_sacct_standin() {
  write_if_changed "$BIN/sacct" <<'EOF' || true
#!/usr/bin/env bash
# sacct stand-in written by scripts/slurm-local.sh for a cluster without slurmdbd. It answers the
# query submitit makes (sacct -o JobID,State,NodeList --parsable2 -j ID [-j ID ...]) from
# `squeue -t all`, which lists finished jobs for MinJobAge seconds. Other sacct uses are not supported.
ids=()
while [ $# -gt 0 ]; do
  case $1 in
    -j|--jobs) ids+=("${2//,/ }"); shift 2 ;;
    --jobs=*) ids+=("${1#--jobs=}"); shift ;;
    -j*) ids+=("${1#-j}"); shift ;;
    *) shift ;;
  esac
done
echo "JobID|State|NodeList"
[ ${#ids[@]} -eq 0 ] && exit 0
# one squeue call for all ids, filtered here: `squeue -j` fails outright on an id it no longer knows
squeue -h -t all -o '%i|%T|%N' 2>/dev/null | awk -F'|' -v want="${ids[*]}" '
  BEGIN { n = split(want, w, /[ ,]+/); for (i = 1; i <= n; i++) ok[w[i]] = 1 }
  { base = $1; sub(/_.*/, "", base); if (($1 in ok) || (base in ok)) print }'
EOF
  chmod 0755 "$BIN/sacct"
}

start_munge() {
  # munged insists on owning its key, socket, pid, log and seed files; the socket directory must be
  # searchable by everyone (clients connect) and writable only by munge.
  install -d -o munge -g munge -m 0755 "$MUNGE"
  if [ ! -s "$MUNGE/munge.key" ]; then
    log "creating munge key"
    dd if=/dev/urandom of="$MUNGE/munge.key" bs=1024 count=1 status=none
  fi
  chown munge:munge "$MUNGE/munge.key"; chmod 0400 "$MUNGE/munge.key"
  if alive "$RUN/munged.pid" munged && munge -S "$SOCK" -n 2>/dev/null | unmunge -S "$SOCK" >/dev/null 2>&1; then
    log "munged already running"; return 0
  fi
  rm -f "$SOCK" "$SOCK.lock"
  runuser -u munge -- /usr/sbin/munged --socket="$SOCK" --key-file="$MUNGE/munge.key" \
    --pid-file="$MUNGE/munged.pid" --log-file="$MUNGE/munged.log" --seed-file="$MUNGE/munged.seed" 9>&- \
    || die "munged did not start (see $MUNGE/munged.log)"
  wait_for 10 munged bash -c "munge -S '$SOCK' -n | unmunge -S '$SOCK'"
  cp "$MUNGE/munged.pid" "$RUN/munged.pid"  # root-owned copy beside the others for `down`
  log "munged started (pid $(cat "$RUN/munged.pid"))"
}

write_env_file() {
  write_if_changed "$ENVFILE" <<EOF || true
# Source this file to use the local Slurm cluster started by scripts/slurm-local.sh.
export SLURM_CONF='$CONF'
export HAWKEYE_SLURM_BIN='$BIN'
case ":\$PATH:" in *":$BIN:"*) ;; *) export PATH="$BIN:\$PATH" ;; esac
EOF
}

cmd_up() {
  [ "$(id -u)" = 0 ] || die "must run as root to install and start slurmctld/slurmd/munged (running as $(id -un))"
  mkdir -p "$STATE" "$ETC" "$RUN" "$LOG" "$BIN" "$STATE/ctld" "$STATE/slurmd"
  # Concurrent `make test` runs share one cluster: serialise `up`. Daemons are started with fd 9
  # closed (9>&-) so they do not inherit, and keep holding, the lock.
  exec 9>"$STATE/lock"
  flock -w 120 9 || die "another scripts/slurm-local.sh has held $STATE/lock for 120 s"
  rm -f "$ERRFILE"
  local t0=$SECONDS
  install_packages
  for b in /usr/sbin/slurmctld /usr/sbin/slurmd /usr/sbin/munged; do [ -x $b ] || die "$b missing after install"; done
  export SLURM_CONF=$CONF
  if write_slurm_conf; then
    log "wrote $CONF"
    for d in slurmd slurmctld; do  # configuration changed: restart what is running
      alive "$RUN/$d.pid" $d && { log "restarting $d for the new configuration"; stop_daemon $d $d "$RUN/$d.pid"; }
    done
  fi
  write_sacct_standin
  start_munge
  if alive "$RUN/slurmctld.pid" slurmctld; then log "slurmctld already running"
  else
    /usr/sbin/slurmctld -f "$CONF" 9>&- || die "slurmctld did not start (see $LOG/slurmctld.log)"
    wait_for 30 slurmctld scontrol ping
    log "slurmctld started (pid $(cat "$RUN/slurmctld.pid"))"
  fi
  if alive "$RUN/slurmd.pid" slurmd; then log "slurmd already running"
  else
    /usr/sbin/slurmd -f "$CONF" -N "$HOST" 9>&- || die "slurmd did not start (see $LOG/slurmd.log)"
    wait_for 10 slurmd alive "$RUN/slurmd.pid" slurmd
    log "slurmd started (pid $(cat "$RUN/slurmd.pid"))"
  fi
  local st="" i
  for ((i = 0; i < TIMEOUT * 4; i++)); do
    st=$(node_state || true)
    case "$st" in
      idle|mixed|allocated|completing) break ;;
      *drain*|down*) scontrol update NodeName="$HOST" State=RESUME >/dev/null 2>&1 || true ;;
    esac
    sleep 0.25
  done
  case "$st" in idle|mixed|allocated|completing) ;; *) die "node $HOST is '${st:-unknown}' after ${TIMEOUT} s" ;; esac
  write_env_file
  log "ready in $((SECONDS - t0)) s: node $HOST $st, $CPUS CPUs, port $PORT; source $ENVFILE"
  echo "$ENVFILE"
}

cmd_status() {
  local d ok=0
  for d in munged slurmctld slurmd; do
    if alive "$RUN/$d.pid" $d; then echo "$d: running (pid $(cat "$RUN/$d.pid"))"; else echo "$d: stopped"; ok=3; fi
  done
  if [ $ok = 0 ]; then
    echo "node $HOST: $(node_state || echo unknown)"
    echo "env file: $ENVFILE"
  fi
  [ -s "$ERRFILE" ] && echo "last up error: $(cat "$ERRFILE")"
  return $ok
}

cmd_down() {
  [ -d "$STATE" ] || { log "nothing to stop ($STATE does not exist)"; return 0; }
  export SLURM_CONF=$CONF
  if alive "$RUN/slurmctld.pid" slurmctld; then
    local jobs i
    jobs=$(squeue -h -o %A 2>/dev/null | sort -u | tr '\n' ' ')
    if [ -n "${jobs// }" ]; then
      log "cancelling jobs: $jobs"
      # shellcheck disable=SC2086
      scancel $jobs 2>/dev/null || true
      for ((i = 0; i < 40; i++)); do [ -z "$(squeue -h -t R,CG 2>/dev/null)" ] && break; sleep 0.25; done
    fi
  fi
  rm -f "$ENVFILE"
  stop_daemon slurmd slurmd "$RUN/slurmd.pid"
  stop_daemon slurmctld slurmctld "$RUN/slurmctld.pid"
  stop_daemon munged munged "$RUN/munged.pid"
  if [ "${HAWKEYE_SLURM_PURGE:-0}" = 1 ]; then log "removing $STATE"; rm -rf "$STATE"; fi
  log "stopped"
}

case "$CMD" in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  *) echo "usage: $0 up|down|status   (state in \$HAWKEYE_SLURM_DIR, default /tmp/hawkeye-slurm)" >&2; exit 2 ;;
esac
