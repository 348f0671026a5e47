#!/usr/bin/env bash
# Builds (once) and caches the upstream Gateway API conformance suite for the node tier
# (e2e/k8s-node/conformance.e2e.ts, docs/gateway-api.md "Conformance"), from the Go modules
# sigs.k8s.io/gateway-api@$GATEWAY_API_VERSION and sigs.k8s.io/gateway-api/conformance@same:
#   src/                          the gateway-api module with the conformance module at src/conformance
#                                 (the layout of the upstream repository: conformance/go.mod's
#                                 `replace sigs.k8s.io/gateway-api => ../` resolves to src/)
#   bin/conformance.test          `go test -c` of the conformance package (flags: -help)
#   bin/echo-basic                the suite's echo backend (conformance/echo-basic)
#   echo-basic.oci.tar            a one-layer OCI image of it (tools/images/static-image.ts, the
#                                 writer of `npm run images`), for `ctr -n k8s.io images import`
#   echo-image.txt                the names the suite's manifests use for it, one a line (the
#                                 first is the tar's own name; tag the others after the import)
#   crds/standard-install.yaml    the standard channel CRDs (config/crd/standard/*.yaml joined with
#                                 `---`: the release's standard-install.yaml)
# Contract: idempotent; safe to call concurrently (flock); logs go to stderr; the ONLY line on
# stdout is the absolute cache dir (~/.cache/aviary-gateway-api/<version>). Exit != 0 on failure.
# Cold: ~4 min on 2 cores (niced). The image step needs `node tools/build/build.mjs static-image`
# (run here when dist/tools/images/static-image.js is missing).
# Env: AVIARY_GATEWAY_API_CACHE (default ~/.cache/aviary-gateway-api), AVIARY_GATEWAY_API_NICE (default 10).
set -euo pipefail

GATEWAY_API_VERSION=v1.6.0
# The echo-basic tags conformance/base/manifests.yaml of that version names (all one program).
ECHO_IMAGES=(registry.k8s.io/gateway-api/echo-basic:v1.5.1 registry.k8s.io/gateway-api/echo-basic:v1.6.0-dev.3)

CACHE_ROOT="${AVIARY_GATEWAY_API_CACHE:-${HOME}/.cache/aviary-gateway-api}"
ROOT="${CACHE_ROOT}/${GATEWAY_API_VERSION}"
NICE="${AVIARY_GATEWAY_API_NICE:-10}"
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

log() { printf '[ensure-conformance] %s\n' "$*" >&2; }

have_src() { [[ -f "${ROOT}/src/go.mod" && -f "${ROOT}/src/conformance/go.mod" ]]; }
have_bins() { [[ -x "${ROOT}/bin/conformance.test" && -x "${ROOT}/bin/echo-basic" ]]; }
have_crds() { [[ -s "${ROOT}/crds/standard-install.yaml" ]]; }
have_image() { [[ -s "${ROOT}/echo-basic.oci.tar" ]]; }
names_current() { [[ "$(cat "${ROOT}/echo-image.txt" 2>/dev/null)" == "$(printf '%s\n' "${ECHO_IMAGES[@]}")" ]]; }
complete() { have_src && have_bins && have_crds && have_image && names_current; }

module_dir() { # module_dir <module path>: its directory in the Go module cache (downloaded if absent)
  GOFLAGS=-mod=mod go mod download -json "$1@${GATEWAY_API_VERSION}" | tee "${ROOT}/dl.json" |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p'
}

main() {
  if complete; then
    printf '%s\n' "${ROOT}"
    exit 0
  fi
  command -v go >/dev/null || { log "go is required (Go >= 1.26: the conformance module's go directive)"; exit 1; }
  command -v flock >/dev/null || { log "flock (util-linux) is required"; exit 1; }
  mkdir -p "${ROOT}"
  exec 9>"${ROOT}.lock"
  log "building the Gateway API ${GATEWAY_API_VERSION} conformance suite into ${ROOT} (waits for any build already running)"
  flock 9
  if complete; then
    printf '%s\n' "${ROOT}"
    exit 0
  fi
  export CGO_ENABLED=0 GOTOOLCHAIN="${GOTOOLCHAIN:-local}" GOFLAGS="${GOFLAGS:--buildvcs=false}"
  if ! have_src; then
    local main conf tmp
    main="$(module_dir sigs.k8s.io/gateway-api)"
    conf="$(module_dir sigs.k8s.io/gateway-api/conformance)"
    [[ -d "${main}" && -d "${conf}" ]] || { log "go mod download gave no module directory"; exit 1; }
    tmp="$(mktemp -d "${ROOT}/src.XXXX")"
    cp -r "${main}/." "${tmp}/"
    rm -rf "${tmp}/conformance"
    cp -r "${conf}" "${tmp}/conformance"
    chmod -R u+w "${tmp}" # module cache files are read-only
    rm -rf "${ROOT}/src"
    mv "${tmp}" "${ROOT}/src"
  fi
  if ! have_bins; then
    mkdir -p "${ROOT}/bin"
    local start
    start=$(date +%s)
    # The conformance module's own go.mod (its replace of the parent module), not a workspace.
    (cd "${ROOT}/src/conformance" && GOWORK=off nice -n "${NICE}" go test -c -o "${ROOT}/bin/conformance.test.tmp" . >&2 &&
      GOWORK=off nice -n "${NICE}" go build -o "${ROOT}/bin/echo-basic.tmp" ./echo-basic >&2) 2>&1 | tee "${ROOT}/build.log" >&2
    [[ ${PIPESTATUS[0]} -eq 0 ]] || { log "build failed (see ${ROOT}/build.log)"; exit 1; }
    mv -f "${ROOT}/bin/conformance.test.tmp" "${ROOT}/bin/conformance.test"
    mv -f "${ROOT}/bin/echo-basic.tmp" "${ROOT}/bin/echo-basic"
    log "built in $(($(date +%s) - start))s"
    rm -f "${ROOT}/echo-basic.oci.tar" # made from the new binary below
  fi
  if ! have_crds; then
    mkdir -p "${ROOT}/crds"
    for f in "${ROOT}"/src/config/crd/standard/*.yaml; do printf -- '---\n'; cat "${f}"; done >"${ROOT}/crds/standard-install.yaml.tmp"
    mv -f "${ROOT}/crds/standard-install.yaml.tmp" "${ROOT}/crds/standard-install.yaml"
  fi
  if ! have_image; then
    [[ -f "${REPO}/dist/tools/images/static-image.js" ]] || node "${REPO}/tools/build/build.mjs" static-image >&2
    # echo-basic's image upstream: distroless static, user 65532, ports 3000 (HTTP) and 8443.
    node "${REPO}/dist/tools/images/static-image.js" --name "${ECHO_IMAGES[0]}" --binary "${ROOT}/bin/echo-basic" \
      --out "${ROOT}/echo-basic.oci.tar" --user 65532:65532 --port 3000 --port 8443 >&2
  fi
  printf '%s\n' "${ECHO_IMAGES[@]}" >"${ROOT}/echo-image.txt"
  printf '%s\n' "${ROOT}"
}

main "$@"
