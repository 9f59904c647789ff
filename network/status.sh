#!/usr/bin/env bash
# Prints each node's state (operations /healthz), PID, endpoint and block height on the channel, and
# each organization's gateway with its base URL and readiness.
# Exit status 0 when every node is up and healthy, 1 otherwise.
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"

RUN_DIR="${EVPAY_RUN_DIR:-$(run_dir_of "$(network_name)")}"
export EVPAY_RUN_DIR="$RUN_DIR"
[[ -f "$RUN_DIR/network.json" ]] || die "no network rendered in $RUN_DIR (run network/up.sh)"
channel="$(jq -r .channel "$RUN_DIR/network.json")"
all_up=0
printf '%-18s %-9s %-8s %-22s %-7s %s\n' NODE STATE PID ENDPOINT HEIGHT HEALTH
while IFS=$'\t' read -r kind node _ host port ops _; do
  state="$("$ROOT/network/node.sh" status "$node")"
  [[ "$state" == up ]] || all_up=1
  if [[ "$kind" == gateway ]]; then
    url="http://$host:$port"
    [[ "$state" != up ]] || curl -fsS --max-time 5 "$url/readyz" >/dev/null 2>&1 || state="not-ready"
    printf '%-18s %-9s %-8s %-22s %-7s %s\n' "$node" "$state" "$(node_pid "$RUN_DIR" "$node")" "$url" - "$url/readyz"
    continue
  fi
  height="$(height_of "http://$host:$ops" "$channel")"
  printf '%-18s %-9s %-8s %-22s %-7s %s\n' "$node" "$state" "$(node_pid "$RUN_DIR" "$node")" "$host:$port" \
    "${height:--}" "http://$host:$ops/healthz"
done <"$RUN_DIR/nodes.tsv"
exit "$all_up"
