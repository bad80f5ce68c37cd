#!/usr/bin/env bash
# gen-pki.sh DIR: throwaway PKI for the local test cluster (openssl only, ECDSA P-256 keys):
# ca.{crt,key}; apiserver.{crt,key} (serving, loopback + in-cluster names); client certs admin
# (O=system:masters), kube-controller-manager, kube-scheduler, kwok; sa.{key,pub} (service-account tokens).
# Certificates carry explicit v3 extensions so strict verifiers (Go, rustls/webpki, OpenSSL) accept them.
set -euo pipefail

D=${1:?usage: gen-pki.sh DIR}
mkdir -p "$D"
cd "$D"
umask 077

newkey() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
DAYS=3650

# --- CA ---
newkey ca.key
cat >ca.ext <<'EOF'
basicConstraints=critical,CA:TRUE
keyUsage=critical,keyCertSign,cRLSign
subjectKeyIdentifier=hash
EOF
openssl req -new -key ca.key -subj "/CN=champion-test-ca" -out ca.csr
openssl x509 -req -in ca.csr -signkey ca.key -days "$DAYS" -extfile ca.ext -out ca.crt 2>/dev/null

sign() { # name subject extfile
  newkey "$1.key"
  openssl req -new -key "$1.key" -subj "$2" -out "$1.csr"
  openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days "$DAYS" \
    -extfile "$3" -out "$1.crt" 2>/dev/null
}

# --- kube-apiserver serving certificate ---
cat >server.ext <<'EOF'
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid
subjectAltName=DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,IP:127.0.0.1,IP:10.0.0.1
EOF
sign apiserver "/CN=kube-apiserver" server.ext

# --- client certificates (CN = user, O = group) ---
cat >client.ext <<'EOF'
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid
EOF
sign admin "/O=system:masters/CN=champion-admin" client.ext
sign kube-controller-manager "/CN=system:kube-controller-manager" client.ext
sign kube-scheduler "/CN=system:kube-scheduler" client.ext
sign kwok "/O=system:masters/CN=kwok-controller" client.ext

# --- service-account token signing key pair ---
newkey sa.key
openssl pkey -in sa.key -pubout -out sa.pub

rm -f ./*.csr ./*.ext ca.srl
chmod 0644 ./*.crt sa.pub
