#!/usr/bin/env bash
# Starts, stops or checks one node of the network (peer, orderer or an organization's REST gateway), as a
# plain local process.
#   network/node.sh start|stop|status <node>     e.g. network/node.sh stop alpha-orderer0
# The node runs in its own process group (so its chaincode processes stop with it); its PID is in
# run/<network>/nodes/<node>/pid and its log in run/<network>/nodes/<node>/node.log.
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"

cmd="${1:-}"
node="${2:-}"
[[ -n "$cmd" && -n "$node" ]] || die "usage: node.sh start|stop|status <node>"
RUN_DIR="${EVPAY_RUN_DIR:-$(run_dir_of "$(network_name)")}"
line="$(awk -F'\t' -v n="$node" '$2 == n' "$RUN_DIR/nodes.tsv")"
[[ -n "$line" ]] || die "no node '$node' in $RUN_DIR/nodes.tsv"
IFS=$'\t' read -r kind _ _ host port ops extra _ <<<"$line"
dir="$RUN_DIR/nodes/$node"
logfile="$dir/node.log"
pid="$(node_pid "$RUN_DIR" "$node")"

healthy() { curl -fsS --max-time 2 "http://$host:$ops/healthz" >/dev/null 2>&1; }

case "$cmd" in
  status)
    if pid_alive "$pid"; then
      healthy && echo "up" || echo "unhealthy"
    else
      echo "down"
    fi
    ;;
  start)
    if pid_alive "$pid"; then
      log "$node already up (pid $pid)"
      exit 0
    fi
    for p in "$port" "$ops" "$extra"; do
      [[ -n "$p" ]] || continue
      holder="$(port_holder "$p")"
      [[ -z "$holder" ]] || die "$node cannot start: port $p is in use by $holder"
    done
    set -a
    # shellcheck source=/dev/null
    source "$dir/env"
    set +a
    if [[ "$kind" == peer ]]; then
      setsid "$FABRIC_BIN/peer" node start >>"$logfile" 2>&1 </dev/null &
    elif [[ "$kind" == gateway ]]; then
      setsid node "$ROOT/gateway-api/bin/evpay-gateway.js" serve >>"$logfile" 2>&1 </dev/null &
    else
      setsid "$FABRIC_BIN/orderer" >>"$logfile" 2>&1 </dev/null &
    fi
    pid=$!
    echo "$pid" >"$dir/pid"
    if ! wait_until 60 healthy; then
      pid_alive "$pid" && kill -KILL -- "-$pid" 2>/dev/null || true
      rm -f "$dir/pid"
      die "$node failed to start; its log is $logfile:
$(tail -n 15 "$logfile")"
    fi
    log "$node up (pid $pid, log $logfile)"
    ;;
  stop)
    if ! pid_alive "$pid"; then
      rm -f "$dir/pid"
      exit 0
    fi
    # The whole process group: a peer's chaincode processes are its children.
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    if ! wait_until 15 bash -c "! kill -0 $pid"; then
      kill -KILL -- "-$pid" 2>/dev/null || true
    fi
    pkill -KILL -g "$pid" 2>/dev/null || true
    rm -f "$dir/pid"
    log "$node stopped"
    ;;
  *) die "unknown command '$cmd' (start, stop or status)" ;;
esac
