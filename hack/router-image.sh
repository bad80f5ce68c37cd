#!/usr/bin/env bash
# Builds the champion-router image: hack/router-image.sh OUT.tar [REF] [BINARY]
#
#   OUT.tar  where the image goes, as a docker archive (what `docker save` writes): load it with
#            `docker load -i`, `ctr -n k8s.io images import`, or push it with
#            `skopeo copy docker-archive:OUT.tar docker://REGISTRY/champion-router:TAG`
#   REF      the image's name (default ghcr.io/champion-ml/champion-router:<router/Cargo.toml version>,
#            the operator's default `router.image`)
#   BINARY   a champion-router binary to pack (default: `cargo build --release -p champion-router`)
#
# The image holds the binary and the shared libraries it links (tests/images/mkimage.py --libs), nothing
# else; its entrypoint is /champion-router. Reproducible: the same binary gives the same image digest.
# The end-to-end tests build their router image with this script, from the debug binary.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${1:?usage: hack/router-image.sh OUT.tar [REF] [BINARY]}
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' "$ROOT/router/Cargo.toml" | head -1)
REF=${2:-ghcr.io/champion-ml/champion-router:$VERSION}
BINARY=${3:-}
if [ -z "$BINARY" ]; then
  (cd "$ROOT" && cargo build --release -q -p champion-router --bin champion-router)
  BINARY=${CARGO_TARGET_DIR:-$ROOT/target}/release/champion-router
fi
python3 "$ROOT/tests/images/mkimage.py" --libs "$OUT" "$REF" "$BINARY"
echo "$REF -> $OUT" >&2
