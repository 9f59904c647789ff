#!/usr/bin/env bash
# Creates the application channel from the rendered configtx.yaml (BFT, capability V3_0, anchor peers
# in the genesis block) and joins every orderer (osnadmin) and every peer. Skips what is already done.
#   network/channel.sh            (network/up.sh calls it once the nodes are up)
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"

RUN_DIR="${EVPAY_RUN_DIR:-$(run_dir_of "$(network_name)")}"
channel="$(jq -r .channel "$RUN_DIR/network.json")"
block="$RUN_DIR/config/$channel.block"

if [[ ! -f "$block" ]]; then
  log "creating the genesis block of channel $channel"
  configtxgen -configPath "$RUN_DIR/config" -profile EvPayChannel -channelID "$channel" \
    -outputBlock "$block" >>"$RUN_DIR/configtxgen.log" 2>&1 ||
    die "configtxgen failed, see $RUN_DIR/configtxgen.log"
fi

while IFS=$'\t' read -r node admin ca cert key; do
  args=(-o "$admin" --ca-file "$ca" --client-cert "$cert" --client-key "$key")
  # An orderer that just restarted may answer its admin API before it lists the channel it serves.
  wait_until 30 osnadmin channel list "${args[@]}" || die "$node's admin endpoint $admin does not answer"
  if osnadmin channel list "${args[@]}" 2>/dev/null | grep -q "\"name\": *\"$channel\""; then
    log "$node already serves $channel"
    continue
  fi
  if ! out="$(osnadmin channel join --channelID "$channel" --config-block "$block" "${args[@]}" 2>&1)"; then
    if grep -qi "already exists" <<<"$out"; then
      log "$node already serves $channel"
      continue
    fi
    die "$node could not join $channel: $out (see run/*/nodes/$node/node.log)"
  fi
  log "$node joined $channel"
done < <(jq -r '.orderers[] | [.node, .adminEndpoint, .tlsCACert, .adminClient.cert, .adminClient.key] | @tsv' \
  "$RUN_DIR/network.json")

for msp in $(org_msps "$RUN_DIR"); do
  (
    as_admin "$RUN_DIR" "$msp"
    if peer channel list 2>/dev/null | grep -qx "$channel"; then
      log "peer of $msp already on $channel"
      exit 0
    fi
    peer channel join -b "$block" >>"$RUN_DIR/peer-cli.log" 2>&1 ||
      die "peer of $msp could not join $channel, see $RUN_DIR/peer-cli.log"
    log "peer of $msp joined $channel"
  )
done
