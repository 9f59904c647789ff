#!/usr/bin/env bash
# Builds Hyperledger Fabric's binaries (pinned version) from the offline source archive into .fabric/bin.
# Skips the work when the binaries already report the pinned version.
#   FABRIC_SOURCE  path to fabric-<version>-src.tar.xz (default: ../shared/fabric/ beside the project)
#   FABRIC_BIN     where the binaries go (default: .fabric/bin in the project, git-ignored)
set -euo pipefail

FABRIC_VERSION=3.1.5
FABRIC_COMMIT=86c1172bec37e6590c6b1ae6f847833df48d65fc
GO_MIN=1.26.4
BINARIES=(peer orderer configtxgen osnadmin cryptogen configtxlator)

root="$(cd "$(dirname "$0")/.." && pwd)"
bin="${FABRIC_BIN:-$root/.fabric/bin}"
# Fabric's reference core.yaml / orderer.yaml of the same version: network/tools/render.ts starts from them.
config="$(dirname "$bin")/config"
log() { printf '[install-fabric] %s\n' "$*"; }
die() { printf '[install-fabric] error: %s\n' "$*" >&2; exit 1; }

have_version() {
  local b
  for b in "${BINARIES[@]}"; do
    [[ -x "$bin/$b" ]] || return 1
  done
  "$bin/peer" version 2>/dev/null | grep -q "Version: v\?$FABRIC_VERSION\$" || return 1
  "$bin/orderer" version 2>/dev/null | grep -q "Version: v\?$FABRIC_VERSION\$" || return 1
  [[ -f "$config/core.yaml" && -f "$config/orderer.yaml" ]] || return 1
}

if have_version; then
  log "Fabric $FABRIC_VERSION already in $bin, nothing to do"
  exit 0
fi

source_archive="${FABRIC_SOURCE:-}"
if [[ -z "$source_archive" ]]; then
  source_archive="$(cd "$root/.." && pwd)/shared/fabric/fabric-$FABRIC_VERSION-src.tar.xz"
fi
[[ -f "$source_archive" ]] || die "Fabric source archive not found at $source_archive (set FABRIC_SOURCE to the fabric-$FABRIC_VERSION-src.tar.xz path)"

command -v go >/dev/null 2>&1 || die "Go $GO_MIN or newer is needed to build Fabric $FABRIC_VERSION and was not found on PATH"
go_have="$(go env GOVERSION 2>/dev/null | sed 's/^go//')"
if [[ "$(printf '%s\n%s\n' "$GO_MIN" "$go_have" | sort -V | head -n1)" != "$GO_MIN" ]]; then
  die "Go $GO_MIN or newer is needed to build Fabric $FABRIC_VERSION; found go$go_have"
fi

sums="$(dirname "$source_archive")/SHA256SUMS"
if [[ -f "$sums" ]]; then
  log "verifying SHA-256 of $(basename "$source_archive") against $sums"
  want="$(awk -v f="$(basename "$source_archive")" '$2 == f || $2 == "*"f {print $1}' "$sums")"
  [[ -n "$want" ]] || die "$sums has no line for $(basename "$source_archive")"
  got="$(sha256sum "$source_archive" | awk '{print $1}')"
  [[ "$got" == "$want" ]] || die "SHA-256 mismatch for $source_archive: expected $want, got $got"
else
  die "no SHA256SUMS beside $source_archive: refusing to build from an unverified archive"
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/fabric-build.XXXXXX")"
trap 'rm -rf "$work"' EXIT
log "unpacking into $work"
tar -xJf "$source_archive" -C "$work" --exclude='fabric-*/docs'
src="$work/fabric-$FABRIC_VERSION"
[[ -d "$src/vendor" ]] || die "archive has no fabric-$FABRIC_VERSION/vendor folder; an offline build needs it"

mkdir -p "$bin"
log "building ${BINARIES[*]} with go$go_have (offline, vendored; 1-2 min on 2 cores)"
started=$SECONDS
pkgs=()
for b in "${BINARIES[@]}"; do pkgs+=("./cmd/$b"); done
(
  cd "$src"
  GOPROXY=off GOFLAGS=-mod=vendor GOTOOLCHAIN=local CGO_ENABLED=0 \
    go build -trimpath \
    -ldflags "-X github.com/hyperledger/fabric/common/metadata.Version=$FABRIC_VERSION -X github.com/hyperledger/fabric/common/metadata.CommitSHA=${FABRIC_COMMIT:0:7}" \
    -o "$bin/" "${pkgs[@]}"
)
mkdir -p "$config"
cp "$src/sampleconfig/core.yaml" "$src/sampleconfig/orderer.yaml" "$src/sampleconfig/configtx.yaml" "$config/"
have_version || die "built binaries in $bin do not report version $FABRIC_VERSION"
log "built Fabric $FABRIC_VERSION in $((SECONDS - started)) s into $bin"
