# tests/bench/lib.sh: helpers shared by the bench's runs (webhooks.sh,
# checkout.sh), sourced with ". tests/bench/lib.sh" from the repository root.
# Every process is started in the background by the caller and stopped here
# by its PID, never by name.
#
# The caller sets problems (a file that collects one line per problem).
# lib_cleanup stops what is still running (the PIDs given to remember) and
# is meant for an EXIT trap.

lib_pids=""
hz=$(getconf CLK_TCK)

problem() {
  echo "  PROBLEM: $*"
  # shellcheck disable=SC2154 # set by the script that sources this file
  echo "$*" >>"$problems"
}

# remember PID: lib_cleanup stops it if it is still running at exit.
remember() { lib_pids="$lib_pids $1"; }

lib_cleanup() {
  for pid in $lib_pids; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in $lib_pids; do
    wait "$pid" 2>/dev/null || true
  done
  lib_pids=""
}

# wait_port PID LOG [TRIES]: waits for "listening on 127.0.0.1:PORT" in LOG
# from PID, TRIES times 50 ms at most (200: 10 s; under valgrind a start
# takes longer); prints the port.
wait_port() {
  _pid=$1 _log=$2 _max=${3:-200} _tries=0
  while :; do
    _port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p' "$_log" 2>/dev/null | head -n 1)
    [ -n "$_port" ] && { echo "$_port"; return 0; }
    if ! kill -0 "$_pid" 2>/dev/null || [ "$_tries" -ge "$_max" ]; then
      echo "bench: $_log: the server did not start; its log:" >&2
      sed 's/^/    /' "$_log" >&2
      return 1
    fi
    _tries=$((_tries + 1))
    sleep 0.05
  done
}

# strace_attached STRACE_PID ERR: waits until strace (its stderr in ERR)
# says it attached; returns 1 when it could not (it exited, or 5 s passed).
strace_attached() {
  _tries=0
  until grep -q 'attached' "$2" 2>/dev/null; do
    if ! kill -0 "$1" 2>/dev/null || [ "$_tries" -ge 100 ]; then return 1; fi
    _tries=$((_tries + 1))
    sleep 0.05
  done
}

# wait_health PORT: until parley's /v1/health answers.
wait_health() {
  _tries=0
  until curl -fsS -o /dev/null "http://127.0.0.1:$1/v1/health"; do
    _tries=$((_tries + 1))
    [ "$_tries" -lt 100 ] || { echo "bench: /v1/health never answered" >&2; return 1; }
    sleep 0.05
  done
}

# cpu_ticks PID: user + system CPU the process has used, in clock ticks.
cpu_ticks() {
  awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0
}

# peak_rss_mb PID: VmHWM in MB (one decimal).
peak_rss_mb() {
  awk '/^VmHWM:/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status" 2>/dev/null || echo "?"
}

# cpu_share TICKS0 TICKS1 SECONDS: the share of one core, e.g. "43%".
cpu_share() {
  awk -v a="$1" -v b="$2" -v s="$3" -v hz="$hz" \
    'BEGIN { printf "%.0f%%", (s > 0 ? 100 * (b - a) / hz / s : 0) }'
}

# cpu_per TICKS0 TICKS1 COUNT: CPU µs per item.
cpu_per() {
  awk -v a="$1" -v b="$2" -v n="$3" -v hz="$hz" \
    'BEGIN { printf "%.1f", (n > 0 ? (b - a) / hz * 1e6 / n : 0) }'
}

# load_note: the machine's 1-minute load average, to read the figures by
# (the bench shares the machine with whatever else runs).
load_note() { echo "load average $(cut -d ' ' -f 1 /proc/loadavg) on $(nproc) CPUs before the run"; }

# random_hex: 32 random hex digits (secrets and tokens for one run).
random_hex() { head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n'; }

# now_s: seconds since the epoch with a fraction.
now_s() { date +%s.%N; }

# elapsed T0 T1: seconds between two now_s values.
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

# stop_pid NAME PID LOG: SIGTERM, then waits (10 s at most, then SIGKILL);
# a process that died before or exits with a status other than 0 is a
# problem. Prints nothing when all went well.
stop_pid() {
  _name=$1 _pid=$2 _log=$3
  if ! kill -0 "$_pid" 2>/dev/null; then
    problem "$_name: it died during the run (see $_log)"
    tail -n 20 "$_log" | sed 's/^/    /'
  else
    kill -TERM "$_pid"
    _tries=0
    while kill -0 "$_pid" 2>/dev/null; do
      _tries=$((_tries + 1))
      if [ "$_tries" -ge 200 ]; then
        problem "$_name: it did not stop within 10 s of SIGTERM; killed"
        kill -KILL "$_pid" 2>/dev/null || true
        break
      fi
      sleep 0.05
    done
  fi
  _status=0
  wait "$_pid" 2>/dev/null || _status=$?
  [ "$_status" -eq 0 ] || problem "$_name: it exited with status $_status (see $_log)"
  # no longer ours to clean up
  _rest=""
  for _p in $lib_pids; do [ "$_p" = "$_pid" ] || _rest="$_rest $_p"; done
  lib_pids=$_rest
}

# log_trouble NAME LOG: the WARN and ERROR lines of a parley log, counted;
# the first few are shown.
log_trouble() {
  _n=$(grep -cE ' (WARN|ERROR) ' "$2" || true)
  if [ "$_n" -gt 0 ]; then
    problem "$1: $_n WARN/ERROR lines in $2"
    grep -E ' (WARN|ERROR) ' "$2" | head -n 5 | sed 's/^/    /'
  fi
}

# build_tool NAME: builds tests/bench/NAME.c into build/NAME (the project's
# flags; libevent, jansson and libcrypto) when missing or older.
build_tool() {
  _src=tests/bench/$1.c _bin=build/$1
  if [ ! -x "$_bin" ] || [ -n "$(find "$_src" -newer "$_bin")" ]; then
    mkdir -p build
    # shellcheck disable=SC2046 # pkg-config's words are separate flags
    ${CC:-cc} -std=c11 -Wall -Wextra -Werror -O2 -g -o "$_bin" "$_src" \
      $(pkg-config --cflags --libs libevent jansson libcrypto) || {
      echo "bench: cannot build $_bin" >&2
      return 1
    }
  fi
}
