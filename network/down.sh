#!/usr/bin/env bash
# Stops every node of the network by its PID (gateways, then peers with their chaincode processes, then
# orderers).
# Ledgers, world state and crypto stay, so network/up.sh brings the same network back.
#   network/down.sh            stop
#   network/down.sh --purge    stop and delete run/<network> (ledgers, crypto, logs)
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"

purge=false
case "${1:-}" in
  "") ;;
  --purge) purge=true ;;
  *) die "usage: down.sh [--purge]" ;;
esac
RUN_DIR="${EVPAY_RUN_DIR:-$(run_dir_of "$(network_name)")}"
export EVPAY_RUN_DIR="$RUN_DIR"
if [[ -f "$RUN_DIR/nodes.tsv" ]]; then
  for kind in gateway peer orderer; do
    pids=()
    while IFS=$'\t' read -r _ node _; do
      "$ROOT/network/node.sh" stop "$node" &
      pids+=($!)
    done < <(nodes_of_kind "$RUN_DIR" "$kind")
    for p in "${pids[@]}"; do wait "$p" || true; done
  done
else
  log "nothing to stop in $RUN_DIR"
fi
if $purge; then
  rm -rf "$RUN_DIR"
  log "deleted $RUN_DIR (ledgers, crypto, logs)"
fi
