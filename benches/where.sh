#!/bin/bash
# Per-operation costs of one workload on one system, for BENCHMARKS.md (issue 20): perf stat
# of both processes, then strace -c of both. usage: benches/where.sh SYSTEM VERSION WORKLOAD ARGS...
# (from the workspace, after cargo build --release -p benches and interop-tests/go/build.sh)
sys=$1; v=$2; shift 2
cd "$(dirname "$0")/.."; B=target/release/compare; G=interop-tests/go/bin/go-bench
case $sys in go-*) S="$G server --system $sys --version $v --listen 127.0.0.1:0"; C="$G client --system $sys --version $v";;
  *) S="$B peer server --system $sys --version $v --listen 127.0.0.1:0"; C="$B peer client --system $sys --version $v";; esac
run() { # server prefix, client prefix, client args
  local sp=$1 cp=$2; shift 2
  $sp $S > /tmp/w-srv.out 2>/tmp/w-srv.err & spid=$!
  for i in $(seq 50); do grep -q listening /tmp/w-srv.out && break; sleep 0.05; done
  addr=$(sed -n 's/listening on //p' /tmp/w-srv.out)
  $cp $C --connect $addr "$@" > /tmp/w-cli.out 2>/tmp/w-cli.err
  sleep 0.2; pkill -TERM -P $spid 2>/dev/null
  for i in $(seq 30); do kill -0 $spid 2>/dev/null || break; sleep 0.1; done
  kill $spid 2>/dev/null; wait $spid 2>/dev/null
}
shift 0
EV=task-clock,context-switches,cpu-migrations,sched:sched_wakeup
run "perf stat -x, -e $EV -o /tmp/w-srv.stat --" "perf stat -x, -e $EV -o /tmp/w-cli.stat --" "$@"
echo "$sys v$v $*: $(tail -c 200 /tmp/w-cli.out | tr -d '\n' | cut -c1-160)"
for side in cli srv; do echo -n "  $side: "; awk -F, '/task-clock|context-switches|cpu-migrations|sched_wakeup/{printf "%s=%s ", $3, $1}' /tmp/w-$side.stat; echo; done
run "strace -c -f -o /tmp/w-srv.strace" "strace -c -f -o /tmp/w-cli.strace" "$@"
for side in cli srv; do echo -n "  $side syscalls: "; awk '/^[ ]*[0-9]/ && NF>=5 {printf "%s=%s ", $NF, $4}' /tmp/w-$side.strace | tr ' ' '\n' | sort -t= -k2 -rn | head -6 | tr '\n' ' '; grep total /tmp/w-$side.strace | awk '{printf " total=%s", $3}'; echo; done
