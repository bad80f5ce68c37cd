#!/usr/bin/env bash
# build-images.sh: build the images that the real test node runs (tests/cluster/node-up.sh imports them
# with `ctr images import`; nothing is pulled from a registry), once, into
# ${XDG_CACHE_HOME:-~/.cache}/champion/images/<key>/, <key> = sha256 of this folder's sources and scripts
# and `go version`. Each image is one static Go binary (standard library only, CGO_ENABLED=0, -trimpath,
# no build id) in a docker-archive tarball written by mkimage.py with zero timestamps, so a rebuild gives
# the same digests:
#   model-server.tar  champion.test/model-server:1  (the example model server, see model-server/main.go)
#   trainer.tar       champion.test/trainer:1       (training and evaluation Jobs, see trainer/main.go)
#   pause.tar         registry.k8s.io/pause:3.10    (the pod sandbox, containerd's sandbox_image)
# Usage: IMAGES=$(tests/images/build-images.sh | tail -1)   # progress on stderr, the folder on stdout
# Env: XDG_CACHE_HOME (cache root), REBUILD=1 (ignore an existing cache entry).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export GOTOOLCHAIN=local CGO_ENABLED=0 GOWORK=off GOFLAGS="-mod=readonly -buildvcs=false"

log() { printf '[build-images] %s\n' "$*" >&2; }
if ! command -v go >/dev/null && [[ -x /usr/local/go/bin/go ]]; then PATH=$PATH:/usr/local/go/bin; fi
command -v go >/dev/null || { log "go not found in PATH (nor /usr/local/go/bin)"; exit 1; }

# name ref: the images, in the order described above
IMAGES=("model-server champion.test/model-server:1" "trainer champion.test/trainer:1" "pause registry.k8s.io/pause:3.10")

KEY=$( { cd "$HERE" && find . -type f \( -name '*.go' -o -name go.mod -o -name '*.sh' -o -name '*.py' \) \
  -print0 | sort -z | xargs -0 sha256sum; go version; } | sha256sum | cut -c1-16)
ROOT=${XDG_CACHE_HOME:-$HOME/.cache}/champion/images
DEST=$ROOT/$KEY
mkdir -p "$ROOT"
done_already() { [[ -f $DEST/.complete && ${REBUILD:-0} != 1 ]]; }
if done_already; then
  log "cached: $DEST"
  echo "$DEST"
  exit 0
fi
exec 9>"$ROOT/.lock"
flock 9
if done_already; then
  log "cached (built by another process): $DEST"
  echo "$DEST"
  exit 0
fi

T0=$SECONDS
STAGE=$ROOT/.stage-$KEY-$$
trap 'rm -rf "$STAGE"' EXIT
mkdir -p "$STAGE/bin"
log "go build ./model-server ./trainer ./pause"
(cd "$HERE" && go build -trimpath -ldflags "-s -w -buildid=" -o "$STAGE/bin/" ./model-server ./trainer ./pause)
for entry in "${IMAGES[@]}"; do
  read -r name ref <<<"$entry"
  python3 "$HERE/mkimage.py" "$STAGE/$name.tar" "$ref" "$STAGE/bin/$name" >&2
  echo "$name $ref" >>"$STAGE/images.txt"
done
rm -rf "$STAGE/bin"
touch "$STAGE/.complete"
rm -rf "$DEST"
mv -T "$STAGE" "$DEST"
log "built in $((SECONDS - T0)) s: $DEST ($(du -sh "$DEST" | cut -f1))"
echo "$DEST"
