#!/usr/bin/env bash
# sa-kubeconfig.sh DIR NAMESPACE SERVICEACCOUNT OUTFILE: mint a 24 h token for an existing
# ServiceAccount of the cluster started by up.sh DIR (kubectl create token) and write a kubeconfig
# for that identity to OUTFILE: same server and CA as DIR/kubeconfig, user = the bearer token.
# The ServiceAccount (and its RBAC) must exist already. TOKEN_DURATION overrides 24h.
set -euo pipefail

DIR=${1:?usage: sa-kubeconfig.sh DIR NAMESPACE SERVICEACCOUNT OUTFILE}
NS=${2:?namespace}
SA=${3:?serviceaccount}
OUT=${4:?outfile}
# shellcheck disable=SC1091
source "$DIR/env"

kc() { "$KUBECTL" --kubeconfig "$KUBECONFIG" "$@"; }
TOKEN=$(kc -n "$NS" create token "$SA" --duration="${TOKEN_DURATION:-24h}")
CA=$(kc config view --raw --minify -o jsonpath='{.clusters[0].cluster.certificate-authority-data}')
SERVER=$(kc config view --raw --minify -o jsonpath='{.clusters[0].cluster.server}')
[[ -n $TOKEN && -n $CA && -n $SERVER ]] || { echo "sa-kubeconfig.sh: could not read token/CA/server" >&2; exit 1; }

mkdir -p "$(dirname "$OUT")"
TMP=$(mktemp "$OUT.XXXXXX")
trap 'rm -f "$TMP"' EXIT
cat >"$TMP" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: champion-test
  cluster:
    server: $SERVER
    certificate-authority-data: $CA
users:
- name: system:serviceaccount:$NS:$SA
  user:
    token: $TOKEN
contexts:
- name: $SA@champion-test
  context:
    cluster: champion-test
    namespace: $NS
    user: system:serviceaccount:$NS:$SA
current-context: $SA@champion-test
EOF
chmod 0600 "$TMP"
mv -f "$TMP" "$OUT"
trap - EXIT
echo "$OUT"
