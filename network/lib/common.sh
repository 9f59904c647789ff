# Shared by the network scripts (sourced, not run). Paths, logging, the topology and waiting helpers.
# EVPAY_TOPOLOGY picks another topology file (the tests' network extends the default one).

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
FABRIC_BIN="$ROOT/.fabric/bin"
TOPOLOGY="${EVPAY_TOPOLOGY:-$ROOT/network/topology.json}"
TSX="$ROOT/node_modules/.bin/tsx"
export PATH="$FABRIC_BIN:$PATH"

log() { printf '[%s] %s\n' "$(basename "$0" .sh)" "$*"; }
die() {
  printf '[%s] error: %s\n' "$(basename "$0" .sh)" "$*" >&2
  exit 1
}

# The run folder of the topology's network: run/<name> (rendered configs, crypto, ledgers, logs, PIDs).
network_name() { "$TSX" "$ROOT/network/tools/topology.ts" name "$TOPOLOGY"; }
run_dir_of() { echo "$ROOT/run/$1"; }

# Lines of nodes.tsv: kind node mspId host port operationsPort (chaincodePort | adminPort consenterId).
nodes_of_kind() { awk -F'\t' -v k="$2" '$1 == k' "$1/nodes.tsv"; }

pid_alive() { [[ -n "${1:-}" ]] && kill -0 "$1" 2>/dev/null; }
node_pid() { cat "$1/nodes/$2/pid" 2>/dev/null || true; }

# Waits until a command succeeds, polling every 0.2 s; fails after $1 seconds.
wait_until() {
  local limit="$1"
  shift
  local deadline=$((SECONDS + limit))
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || return 1
    sleep 0.2
  done
}

# Who listens on a TCP port ("" when free).
port_holder() { ss -ltnpH "sport = :$1" 2>/dev/null | sed -n 's/.*users:((\(.*\)))/\1/p' | head -n1; }

# Milliseconds since the epoch, for phase timings.
now_ms() { date +%s%3N; }

# Peer CLI environment of an organization's admin (by MSP id), read from network.json.
as_admin() {
  local run_dir="$1" msp="$2" line
  line="$(jq -r --arg m "$msp" \
    '.orgs[] | select(.mspId == $m) | [.mspId, .admin.mspDir, .peer.endpoint, .peer.tlsCACert, .peer.node] | @tsv' \
    "$run_dir/network.json")"
  [[ -n "$line" ]] || die "no organization $msp in $run_dir/network.json"
  local node
  IFS=$'\t' read -r CORE_PEER_LOCALMSPID CORE_PEER_MSPCONFIGPATH CORE_PEER_ADDRESS CORE_PEER_TLS_ROOTCERT_FILE node <<<"$line"
  export CORE_PEER_LOCALMSPID CORE_PEER_MSPCONFIGPATH CORE_PEER_ADDRESS CORE_PEER_TLS_ROOTCERT_FILE
  export CORE_PEER_TLS_ENABLED=true FABRIC_CFG_PATH="$run_dir/nodes/$node"
}

# MSP ids of the organizations: all, or only operators / the auditor.
org_msps() { jq -r --arg r "${2:-}" '.orgs[] | select($r == "" or .role == $r) | .mspId' "$1/network.json"; }

# The orderer the peer CLI sends to: the current SmartBFT leader, as most orderers report it in their
# metrics (consenter 1 before the channel exists). A follower holds a request for RequestForwardTimeout
# before passing it on, and one that just restarted may lag in an old view.
orderer_args() {
  local run_dir="$1" channel leader
  channel="$(jq -r .channel "$run_dir/network.json")"
  leader="$(for url in $(jq -r '.orderers[].operationsUrl' "$run_dir/network.json"); do
    curl -fsS --max-time 2 "$url/metrics" 2>/dev/null |
      awk -v c="$channel" '$1 == "consensus_smartbft_view_leader_id{channel=\"" c "\"}" {print $2 + 0}'
  done | sort | uniq -c | sort -rn | awk 'NR == 1 {print $2}')"
  jq -r --argjson id "${leader:-1}" \
    '.orderers[] | select(.consenterId == $id) | "-o \(.endpoint) --tls --cafile \(.tlsCACert)"' "$run_dir/network.json"
}

# A node's block height on the channel, from its Prometheus metrics ("" when unreachable).
height_of() {
  curl -fsS --max-time 2 "$1/metrics" 2>/dev/null |
    awk -v c="$2" '$1 == "ledger_blockchain_height{channel=\"" c "\"}" {print $2}'
}
