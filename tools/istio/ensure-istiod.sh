#!/usr/bin/env bash
# Builds (once) and caches Istio binaries from the istio.io/istio Go module:
#   istiod's pilot-discovery, for the side-by-side benchmarks in tools/bench (docs/benchmarks.md
#   "Aviary vs istiod"):
#     go install -tags vtprotobuf,disable_pgv istio.io/istio/pilot/cmd/pilot-discovery@$ISTIO_VERSION
#   istioctl (`ensure-istiod.sh --istioctl`), the reference for the validation and analyzer
#   differential tests (`istioctl validate`, `istioctl analyze --use-kube=false`):
#     go install -tags vtprotobuf,disable_pgv istio.io/istio/istioctl/cmd/istioctl@$ISTIO_VERSION
#   istio-analyze-files (`ensure-istiod.sh --analyzer`), Istio's analyzers over files with the
#   Kubernetes runtime kinds kept (Services, Pods, Namespaces; istioctl drops them from files): the
#   reference for the analyzer differential test. Its source is tools/istio/analyze-files/main.go,
#   built in a module that requires istio.io/istio@$ISTIO_VERSION (istio's own go.sum pins the
#   dependencies); rebuilt whenever main.go changes.
# istio.io/istio publishes no semver tags on the Go module proxy; the pseudo-version below is the
# newest one `go get` accepted on Go 1.26 here (Istio 1.31-dev, a master commit of 27 August 2026).
# The tags are the ones istio's own Makefile builds with: vtprotobuf
# selects the generated fast (un)marshalers, disable_pgv drops the protoc-gen-validate code.
# Contract: idempotent; safe to call concurrently (flock); logs go to stderr; the ONLY line on
# stdout is the absolute path of the binary (~/.cache/aviary-istio/<version>/bin/<binary>).
# Exit != 0 on failure. Cold build: pilot-discovery ~6-8 min on 2 cores (niced); istioctl ~1 min
# more once pilot-discovery's dependencies are in the Go build cache.
# `ensure-istiod.sh --module-dir` prints instead the directory of istio.io/istio at the same version
# in the Go module cache (downloaded if absent), for its Helm charts (manifests/charts): the
# benchmarks render istiod's own injection ConfigMap from them with helm.
# Env: AVIARY_ISTIO_CACHE (default ~/.cache/aviary-istio), AVIARY_ISTIO_NICE (default 10).
set -euo pipefail

ISTIO_VERSION=v0.0.0-20260827124520-eed52ebb66ad
TAGS=vtprotobuf,disable_pgv
# Bump the suffix whenever the build changes (flags, tags): an older cache then rebuilds.
VERSION="istio-${ISTIO_VERSION}_1"

CACHE_ROOT="${AVIARY_ISTIO_CACHE:-${HOME}/.cache/aviary-istio}"
ROOT="${CACHE_ROOT}/${VERSION}"
BIN="${ROOT}/bin"
NICE="${AVIARY_ISTIO_NICE:-10}"

NAME=pilot-discovery
PACKAGE=istio.io/istio/pilot/cmd/pilot-discovery
MARKER="${ROOT}/.complete"
if [[ "${1:-}" == "--istioctl" ]]; then
  NAME=istioctl
  PACKAGE=istio.io/istio/istioctl/cmd/istioctl
  MARKER="${ROOT}/.complete-istioctl"
fi
ANALYZER_SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/analyze-files/main.go"
if [[ "${1:-}" == "--analyzer" ]]; then
  NAME=istio-analyze-files
  MARKER="${ROOT}/.complete-analyzer-$(sha256sum "${ANALYZER_SRC}" | cut -c1-16)"
fi

log() { printf '[ensure-istiod] %s\n' "$*" >&2; }

complete() { [[ -x "${BIN}/${NAME}" && -f "${MARKER}" ]]; }

# Builds tools/istio/analyze-files into $1: a throwaway module requiring istio.io/istio at the pinned
# version, with istio's go.sum (so every dependency resolves to the version istio itself builds with).
build_analyzer() {
  local out="$1" src istio_dir
  src="${out}/src"
  mkdir -p "${src}"
  istio_dir="$(GOFLAGS=-mod=mod go mod download -json "istio.io/istio@${ISTIO_VERSION}" |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')"
  cp "${ANALYZER_SRC}" "${src}/main.go"
  cp "${istio_dir}/go.sum" "${src}/go.sum"
  chmod u+w "${src}/go.sum"
  printf 'module aviary.local/istio-analyze-files\n\ngo 1.26\n\nrequire istio.io/istio %s\n' "${ISTIO_VERSION}" >"${src}/go.mod"
  (cd "${src}" && nice -n "${NICE}" env GOFLAGS="-mod=mod -buildvcs=false" go build -trimpath -tags "${TAGS}" -ldflags "-s -w" \
    -o "${out}/${NAME}" . >&2)
}

main() {
  if [[ "${1:-}" == "--module-dir" ]]; then
    GOFLAGS=-mod=mod GOTOOLCHAIN="${GOTOOLCHAIN:-local}" go mod download -json "istio.io/istio@${ISTIO_VERSION}" |
      sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p'
    exit 0
  fi
  if complete; then
    printf '%s\n' "${BIN}/${NAME}"
    exit 0
  fi
  command -v go >/dev/null || { log "go is required (Go >= 1.26)"; exit 1; }
  local gov
  gov="$(go env GOVERSION | sed 's/^go//')"
  [[ "$(printf '1.26\n%s\n' "${gov}" | sort -V | head -1)" == "1.26" ]] ||
    { log "Go ${gov} is too old: istio.io/istio@${ISTIO_VERSION} needs Go >= 1.26"; exit 1; }
  command -v flock >/dev/null || { log "flock (util-linux) is required"; exit 1; }
  mkdir -p "${ROOT}"
  exec 9>"${ROOT}.lock"
  log "building ${NAME} ${ISTIO_VERSION} into ${ROOT} (cold: minutes on 2 cores; waits for any build already running)"
  flock 9
  if complete; then # another process finished the build while we waited
    printf '%s\n' "${BIN}/${NAME}"
    exit 0
  fi
  mkdir -p "${BIN}"
  export CGO_ENABLED=0 GOFLAGS="${GOFLAGS:--buildvcs=false}" GOTOOLCHAIN="${GOTOOLCHAIN:-local}"
  local tmp start end
  tmp="$(mktemp -d "${ROOT}/build.XXXX")"
  start=$(date +%s)
  if [[ "${NAME}" == istio-analyze-files ]]; then
    build_analyzer "${tmp}"
  else
    # istio.io/istio's go.mod has replace directives only for its own tools, none on these packages'
    # dependency graph, so `go install pkg@version` builds it as released.
    nice -n "${NICE}" env GOBIN="${tmp}" go install -trimpath -tags "${TAGS}" \
      -ldflags "-s -w -X istio.io/istio/pkg/version.buildVersion=${ISTIO_VERSION}" \
      "${PACKAGE}@${ISTIO_VERSION}" >&2
  fi
  end=$(date +%s)
  mv -f "${tmp}/${NAME}" "${BIN}/${NAME}"
  rm -rf "${tmp}"
  printf '%s build %ss\n%s size %s\n' "${NAME}" "$((end - start))" "${NAME}" "$(stat -c %s "${BIN}/${NAME}")" >>"${ROOT}/build-times.txt"
  touch "${MARKER}"
  log "built in $((end - start))s"
  printf '%s\n' "${BIN}/${NAME}"
}

main "$@"
