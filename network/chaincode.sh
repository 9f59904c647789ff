#!/usr/bin/env bash
# Deploys the project's chaincode (chaincode/, built) on the running network:
#   package  dist/ + production node_modules (no symlinks: the peer refuses them), reproducible, so the
#            same build gives the same package id and a re-run changes nothing
#   install  on every peer, the auditor's too (it answers the auditors' queries)
#   approve  by every organization, with the endorsement policy "a majority of the operators' peers"
#   commit   as sequence 1, or the committed sequence + 1 when the package changed (an upgrade)
#   network/chaincode.sh          (network/up.sh calls it; run it again after changing the chaincode)
#   EVPAY_CHAINCODE_VERSION=0.1.1 network/chaincode.sh   deploy under another version label
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"

RUN_DIR="${EVPAY_RUN_DIR:-$(run_dir_of "$(network_name)")}"
NET="$RUN_DIR/network.json"
channel="$(jq -r .channel "$NET")"
name="$(jq -r .chaincode "$NET")"
policy="$(jq -r .endorsementPolicy "$NET")"
version="${EVPAY_CHAINCODE_VERSION:-$(jq -r .version "$ROOT/chaincode/package.json")}"
label="${name}_${version}"
pkg_dir="$RUN_DIR/chaincode"
pkg="$pkg_dir/$label.tar.gz"
cli_log="$RUN_DIR/peer-cli.log"
read -r -a orderer <<<"$(orderer_args "$RUN_DIR")"

# --- package -------------------------------------------------------------------------------------------
[[ -f "$ROOT/chaincode/dist/index.js" ]] || die "chaincode is not built (npm run build -w chaincode)"
stage="$pkg_dir/stage"
rm -rf "$stage" && mkdir -p "$stage/src/node_modules"
cp -R "$ROOT/chaincode/dist" "$stage/src/dist"
jq '{name, version, private, main, dependencies}' "$ROOT/chaincode/package.json" >"$stage/src/package.json"
# The production dependency closure as npm resolved it for the workspace (exact versions of the lock);
# a nested one (x/node_modules/y) comes with its parent's copy.
(cd "$ROOT" && npm ls -w chaincode --omit=dev --all --parseable 2>/dev/null) |
  sed -n "s#^$ROOT/node_modules/##p" | grep -v '^@evpay/' | grep -v '/node_modules/' | sort -u |
  while read -r dep; do
    mkdir -p "$stage/src/node_modules/$(dirname "$dep")"
    cp -R "$ROOT/node_modules/$dep" "$stage/src/node_modules/$dep"
  done
find "$stage/src" -name .bin -type d -prune -exec rm -rf {} +
find "$stage/src" -type l -delete
[[ -f "$stage/src/node_modules/fabric-shim/cli.js" ]] || die "fabric-shim missing from the package staging"
tarball() { tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$1" -cf - "${@:2}" | gzip -n; }
tarball "$stage/src" . >"$stage/code.tar.gz"
printf '{"type":"evpay-node","label":"%s"}\n' "$label" >"$stage/metadata.json"
tarball "$stage" metadata.json code.tar.gz >"$pkg.tmp"
mv "$pkg.tmp" "$pkg"
package_id="$label:$(sha256sum "$pkg" | cut -d' ' -f1)"
log "package $package_id ($(du -h "$pkg" | cut -f1))"

# --- install on every peer ------------------------------------------------------------------------------
for msp in $(org_msps "$RUN_DIR"); do
  (
    as_admin "$RUN_DIR" "$msp"
    if peer lifecycle chaincode queryinstalled --output json 2>/dev/null |
      jq -e --arg id "$package_id" '.installed_chaincodes // [] | any(.package_id == $id)' >/dev/null; then
      log "installed already on the peer of $msp"
      exit 0
    fi
    peer lifecycle chaincode install "$pkg" >>"$cli_log" 2>&1 || die "install on $msp failed, see $cli_log"
    log "installed on the peer of $msp"
  ) &
done
wait_all() { local rc=0; for j in $(jobs -p); do wait "$j" || rc=1; done; return "$rc"; }
wait_all || die "install failed"

# --- what is committed ----------------------------------------------------------------------------------
first_op="$(org_msps "$RUN_DIR" operator | head -n1)"
committed="$(as_admin "$RUN_DIR" "$first_op" &&
  peer lifecycle chaincode querycommitted -C "$channel" -n "$name" --output json 2>/dev/null || true)"
committed_seq="$(jq -r '.sequence // 0' <<<"${committed:-null}")"
approved_pkg() { # the package id an org approved at a sequence ("" if none)
  (as_admin "$RUN_DIR" "$1" &&
    peer lifecycle chaincode queryapproved -C "$channel" -n "$name" --sequence "$2" --output json 2>/dev/null |
    jq -r '.source.Type.LocalPackage.package_id // ""') || true
}
if ((committed_seq > 0)) && [[ "$(approved_pkg "$first_op" "$committed_seq")" == "$package_id" ]]; then
  log "$name sequence $committed_seq with this package is committed on $channel: nothing to do"
  exit 0
fi
seq=$((committed_seq + 1))
log "deploying $name as sequence $seq (policy $policy)"

# --- approve by every organization ----------------------------------------------------------------------
for msp in $(org_msps "$RUN_DIR"); do
  (
    if [[ "$(approved_pkg "$msp" "$seq")" == "$package_id" ]]; then
      log "$msp approved already"
      exit 0
    fi
    as_admin "$RUN_DIR" "$msp"
    peer lifecycle chaincode approveformyorg "${orderer[@]}" -C "$channel" -n "$name" -v "$version" \
      --package-id "$package_id" --sequence "$seq" --signature-policy "$policy" --waitForEvent --waitForEventTimeout 90s \
      >>"$cli_log" 2>&1 || die "approval by $msp failed, see $cli_log"
    log "$msp approved"
  ) &
done
wait_all || die "approval failed"

# --- commit, endorsed by every operator's peer ---------------------------------------------------------
peer_args=()
while IFS=$'\t' read -r endpoint ca; do
  peer_args+=(--peerAddresses "$endpoint" --tlsRootCertFiles "$ca")
done < <(jq -r '.orgs[] | select(.role == "operator") | [.peer.endpoint, .peer.tlsCACert] | @tsv' "$NET")
(
  as_admin "$RUN_DIR" "$first_op"
  peer lifecycle chaincode commit "${orderer[@]}" -C "$channel" -n "$name" -v "$version" --sequence "$seq" \
    --signature-policy "$policy" "${peer_args[@]}" --waitForEvent --waitForEventTimeout 90s >>"$cli_log" 2>&1 ||
    die "commit failed, see $cli_log"
)
log "$name sequence $seq committed on $channel"
