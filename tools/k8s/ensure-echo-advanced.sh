#!/usr/bin/env bash
# Builds (once) and caches the image the Gateway API conformance suite's mesh tests run
# (conformance/mesh/manifests.yaml: registry.k8s.io/gateway-api/echo-advanced), for the MESH-HTTP
# profile on the node tier (e2e/k8s-node/conformance.e2e.ts, docs/gateway-api.md "Conformance").
# Upstream that image is `FROM gcr.io/istio-release/app` (gateway-api docker/Dockerfile.echo-advanced):
# Istio's test echo app. This builds the same programs from the istio.io/istio Go module that
# tools/istio/ensure-istiod.sh pins (its version, its build tags):
#   bin/server      istio.io/istio/pkg/test/echo/cmd/server (the entrypoint: the pods' --port/--tls/--crt args)
#   bin/client      istio.io/istio/pkg/test/echo/cmd/client (the suite `kubectl exec`s `client <url>` in a pod)
#   cert/cert.crt, cert/cert.key   a self-signed RSA certificate for the --tls port (openssl at build time)
#   echo-advanced.oci.tar          a one-layer OCI image (tools/images/static-image.ts): the two programs in
#                                  /usr/local/bin, /cert.crt and /cert.key, root user, PATH set for exec
#   image.txt                      the image's name (the tag the suite's manifests use)
# Cache: ${AVIARY_GATEWAY_API_CACHE:-~/.cache/aviary-gateway-api}/echo-advanced/<istio version>.
# Contract: idempotent; safe to call concurrently (flock); logs go to stderr; the ONLY line on
# stdout is the absolute cache dir. Exit != 0 on failure. ~1-2 min on 2 cores (niced) with the istio
# module and its dependencies in the Go module cache (ensure-istiod.sh leaves them there); 4 s with a
# warm Go build cache.
# Env: AVIARY_GATEWAY_API_CACHE, AVIARY_GATEWAY_API_NICE (default 10).
set -euo pipefail

# The name conformance/mesh/manifests.yaml of the suite version ensure-conformance.sh builds uses.
IMAGE=registry.k8s.io/gateway-api/echo-advanced:v1.5.1
# Bump whenever the build changes (flags, files, image layout): an older cache then rebuilds.
BUILD=1
TAGS=vtprotobuf,disable_pgv

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "${HERE}/../.." && pwd)"
NICE="${AVIARY_GATEWAY_API_NICE:-10}"

log() { printf '[ensure-echo-advanced] %s\n' "$*" >&2; }

command -v go >/dev/null || { log "go is required (Go >= 1.26)"; exit 1; }
command -v openssl >/dev/null || { log "openssl is required"; exit 1; }
command -v flock >/dev/null || { log "flock (util-linux) is required"; exit 1; }
# The istio.io/istio module directory (…/istio.io/istio@<version>): its version names the cache.
MODULE_DIR="$(bash "${REPO}/tools/istio/ensure-istiod.sh" --module-dir)"
ISTIO_VERSION="${MODULE_DIR##*@}"
[[ -d "${MODULE_DIR}" && -n "${ISTIO_VERSION}" && "${ISTIO_VERSION}" != "${MODULE_DIR}" ]] ||
  { log "ensure-istiod.sh --module-dir gave no module directory (${MODULE_DIR})"; exit 1; }
ROOT="${AVIARY_GATEWAY_API_CACHE:-${HOME}/.cache/aviary-gateway-api}/echo-advanced/${ISTIO_VERSION}_${BUILD}"

complete() {
  [[ -x "${ROOT}/bin/server" && -x "${ROOT}/bin/client" && -s "${ROOT}/cert/cert.key" && -s "${ROOT}/echo-advanced.oci.tar" &&
    "$(cat "${ROOT}/image.txt" 2>/dev/null)" == "${IMAGE}" ]]
}

main() {
  if complete; then
    printf '%s\n' "${ROOT}"
    exit 0
  fi
  mkdir -p "${ROOT}"
  exec 9>"${ROOT}.lock"
  log "building Istio's echo app (${ISTIO_VERSION}) as ${IMAGE} into ${ROOT} (waits for any build already running)"
  flock 9
  if complete; then
    printf '%s\n' "${ROOT}"
    exit 0
  fi
  export CGO_ENABLED=0 GOFLAGS="${GOFLAGS:--buildvcs=false}" GOTOOLCHAIN="${GOTOOLCHAIN:-local}"
  if [[ ! -x "${ROOT}/bin/server" || ! -x "${ROOT}/bin/client" ]]; then
    local tmp start
    tmp="$(mktemp -d "${ROOT}/build.XXXX")"
    start=$(date +%s)
    # As ensure-istiod.sh: istio.io/istio's go.mod replaces nothing on these packages' graph.
    nice -n "${NICE}" env GOBIN="${tmp}" go install -trimpath -tags "${TAGS}" -ldflags "-s -w" \
      "istio.io/istio/pkg/test/echo/cmd/server@${ISTIO_VERSION}" "istio.io/istio/pkg/test/echo/cmd/client@${ISTIO_VERSION}" >&2
    mkdir -p "${ROOT}/bin"
    mv -f "${tmp}/server" "${tmp}/client" "${ROOT}/bin/"
    rm -rf "${tmp}"
    log "built in $(($(date +%s) - start))s"
    rm -f "${ROOT}/echo-advanced.oci.tar"
  fi
  if [[ ! -s "${ROOT}/cert/cert.key" ]]; then
    mkdir -p "${ROOT}/cert"
    # The suite only checks that the --tls port answers; no client verifies this certificate.
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=echo.gateway-conformance-mesh" \
      -addext "subjectAltName=DNS:echo,DNS:*.gateway-conformance-mesh.svc.cluster.local,DNS:*.gateway-conformance-mesh-consumer.svc.cluster.local" \
      -keyout "${ROOT}/cert/cert.key.tmp" -out "${ROOT}/cert/cert.crt" 2>/dev/null
    mv -f "${ROOT}/cert/cert.key.tmp" "${ROOT}/cert/cert.key"
    rm -f "${ROOT}/echo-advanced.oci.tar"
  fi
  if [[ ! -s "${ROOT}/echo-advanced.oci.tar" ]]; then
    [[ -f "${REPO}/dist/tools/images/static-image.js" ]] || node "${REPO}/tools/build/build.mjs" static-image >&2
    # Istio's app image: root user, the server as entrypoint, ports 8080 (HTTP), 8443 (TLS),
    # 9090 (TCP), 7070 (gRPC) as the suite's pods configure them.
    node "${REPO}/dist/tools/images/static-image.js" --name "${IMAGE}" --out "${ROOT}/echo-advanced.oci.tar" \
      --file "${ROOT}/bin/server:/usr/local/bin/server:0755" --file "${ROOT}/bin/client:/usr/local/bin/client:0755" \
      --file "${ROOT}/cert/cert.crt:/cert.crt" --file "${ROOT}/cert/cert.key:/cert.key" \
      --entrypoint /usr/local/bin/server --user 0:0 --env PATH=/usr/local/bin:/usr/bin:/bin \
      --port 8080 --port 8443 --port 9090 --port 7070 >&2
  fi
  printf '%s\n' "${IMAGE}" >"${ROOT}/image.txt"
  printf '%s\n' "${ROOT}"
}

main "$@"
