#!/usr/bin/env bash
# Starts the whole consortium network on this machine, as plain processes (no Docker):
# Fabric binaries (built once from the source archive), crypto material, one SmartBFT orderer and one
# peer per operator plus the auditor's peer, the channel, the chaincode (installed, approved by every
# organization, committed) and the consortium (InitConsortium with the pinned genesis document).
# Then each organization's REST gateway (gateway-api). Returns once a transaction was committed end to
# end on every peer and every gateway answers /readyz; prints every endpoint and how long each phase
# took. Safe to run again: what is already up or done is reported and skipped.
#   network/up.sh                                  the network of network/topology.json
#   EVPAY_TOPOLOGY=test/network/topology.json network/up.sh   another network (the tests' one)
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"

started=$(now_ms)
phase_start=$started
timings=()
phase_done() {
  local t
  t=$(now_ms)
  timings+=("$(printf '%-14s %6.1f s' "$1" "$(((t - phase_start)))e-3")")
  phase_start=$t
}

# --- prerequisites --------------------------------------------------------------------------------------
for tool in node npm jq curl ss setsid; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool is needed and not on PATH (Debian: apt-get install -y jq curl iproute2 util-linux; Node.js >= 20)"
done
"$ROOT/scripts/install-fabric.sh"
if [[ ! -x "$TSX" || ! -d "$ROOT/node_modules/@hyperledger/fabric-gateway" ]]; then
  log "installing npm dependencies (npm ci)"
  (cd "$ROOT" && npm ci --no-audit --no-fund --loglevel=error) || die "npm ci failed (messages above)"
fi
if [[ ! -f "$ROOT/chaincode/dist/index.js" ]] || [[ -n "$(find "$ROOT/chaincode/src" "$ROOT/chaincode/package.json" -newer "$ROOT/chaincode/dist/index.js" -print -quit)" ]]; then
  log "building the chaincode"
  (cd "$ROOT" && npm run build -w chaincode --silent) || die "the chaincode did not build (tsc errors above)"
fi
gw_main="$ROOT/gateway-api/dist/cli/gatewayCli.js"
if [[ ! -f "$gw_main" ]] || [[ -n "$(find "$ROOT/gateway-api/src" "$ROOT/chaincode/dist" -newer "$gw_main" -print -quit)" ]]; then
  log "building the gateway"
  (cd "$ROOT" && npm run build -w gateway-api --silent) || die "the gateway did not build (tsc errors above)"
fi
phase_done prerequisites

# --- configuration and crypto ---------------------------------------------------------------------------
RUN_DIR="$("$TSX" "$ROOT/network/tools/render.ts" "$TOPOLOGY")"
export EVPAY_RUN_DIR="$RUN_DIR"
name="$(basename "$RUN_DIR")"
if [[ ! -d "$RUN_DIR/crypto" ]]; then
  log "generating crypto material (cryptogen) into $RUN_DIR/crypto"
  cryptogen generate --config="$RUN_DIR/config/crypto-config.yaml" --output="$RUN_DIR/crypto.tmp" >/dev/null
  mv "$RUN_DIR/crypto.tmp" "$RUN_DIR/crypto"
else
  log "crypto material already in $RUN_DIR/crypto"
fi
phase_done config

# --- nodes ----------------------------------------------------------------------------------------------
pids=()
while IFS=$'\t' read -r _ node _; do
  "$ROOT/network/node.sh" start "$node" &
  pids+=($!)
done < <(nodes_of_kind "$RUN_DIR" peer; nodes_of_kind "$RUN_DIR" orderer)
rc=0
for p in "${pids[@]}"; do wait "$p" || rc=1; done
((rc == 0)) || die "some nodes did not start (messages above); network/down.sh stops the others"
phase_done nodes

"$ROOT/network/channel.sh"
phase_done channel
"$ROOT/network/chaincode.sh"
phase_done chaincode
"$TSX" "$ROOT/network/tools/consortium.ts" init "$name"
"$TSX" "$ROOT/network/tools/consortium.ts" consenters "$name"
phase_done consortium

# --- ready: a transaction committed on every peer -------------------------------------------------------
read -r block tx < <("$TSX" "$ROOT/network/tools/consortium.ts" ready "$name")
channel="$(jq -r .channel "$RUN_DIR/network.json")"
while IFS=$'\t' read -r node url; do
  reached() { local h; h="$(height_of "$url" "$channel")"; [[ -n "$h" ]] && ((h > block)); }
  wait_until 60 reached || die "$node did not commit block $block within 60 s (log: $RUN_DIR/nodes/$node/node.log)"
done < <(jq -r '.orgs[] | [.peer.node, .peer.operationsUrl] | @tsv' "$RUN_DIR/network.json")
log "transaction $tx committed in block $block on every peer"
phase_done ready

# --- gateways: one per organization, ready when its peer answers a query ---------------------------------
pids=()
while IFS=$'\t' read -r _ node _; do
  "$ROOT/network/node.sh" start "$node" &
  pids+=($!)
done < <(nodes_of_kind "$RUN_DIR" gateway)
rc=0
for p in "${pids[@]}"; do wait "$p" || rc=1; done
((rc == 0)) || die "some gateways did not start (messages above)"
while IFS=$'\t' read -r node url; do
  ready() { curl -fsS --max-time 5 "$url/readyz" >/dev/null; }
  wait_until 60 ready || die "gateway $node is not ready within 60 s (log: $RUN_DIR/nodes/$node/node.log)"
done < <(jq -r '.orgs[] | [.gateway.node, .gateway.url] | @tsv' "$RUN_DIR/network.json")
phase_done gateways

# --- endpoints ------------------------------------------------------------------------------------------
echo
echo "Network '$name' is up (channel $channel, chaincode $(jq -r .chaincode "$RUN_DIR/network.json"))."
jq -r '.orgs[] | "  peer     \(.peer.endpoint)  \(.mspId) (\(.name), \(.role))  health \(.peer.operationsUrl)/healthz"' "$RUN_DIR/network.json"
jq -r '.orderers[] | "  orderer  \(.endpoint)  \(.mspId) (consenter \(.consenterId), \(.operator))  admin \(.adminEndpoint)  health \(.operationsUrl)/healthz"' "$RUN_DIR/network.json"
jq -r '.orgs[] | "  gateway  \(.gateway.url)  \(.mspId) (\(.name))  ready \(.gateway.url)/readyz  API \(.gateway.url)/openapi.json"' "$RUN_DIR/network.json"
echo "  identities and TLS roots: $RUN_DIR/network.json; logs: $RUN_DIR/nodes/<node>/node.log"
echo "  API keys: node gateway-api/bin/evpay-gateway.js credentials create --config $RUN_DIR/nodes/<org>-gateway/gateway.json --role <role> --name <who>"
echo "Phases:"
printf '  %s\n' "${timings[@]}"
printf '  %-14s %6.1f s\n' total "$(($(now_ms) - started))e-3"
