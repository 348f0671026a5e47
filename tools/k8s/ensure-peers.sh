#!/usr/bin/env bash
# Builds (once) and caches the real Kubernetes peers used by the e2e/k8s tier, from Go modules:
#   helm                         helm.sh/helm/v4/cmd/helm@$HELM_VERSION (go install)
#   kube-apiserver, kube-controller-manager, kubectl, etcd,
#   kubelet, kube-scheduler, kube-proxy
#                                one wrapper module requiring k8s.io/kubernetes v$K8S_VERSION with
#                                every staging module replaced by its published v0.x release; etcd is
#                                go.etcd.io/etcd/server/v3/etcdmain at the version Kubernetes pins.
#   coredns                      github.com/coredns/coredns@v$COREDNS_VERSION (go install)
#   pause                        `gcc -Os -static` of k8s.io/kubernetes' build/pause/linux/pause.c
#                                (the pod sandbox image's only binary; see tools/k8s/start-node.sh)
# Contract: idempotent; safe to call concurrently (flock); logs go to stderr; the ONLY line on
# stdout is the absolute bin dir (~/.cache/aviary-k8s/<version>/bin). Exit != 0 on failure.
# Env: AVIARY_K8S_CACHE (default ~/.cache/aviary-k8s), AVIARY_K8S_NICE (default 10).
set -euo pipefail

K8S_VERSION=1.34.4   # the newest v1.34.N the Go module proxy serves
HELM_VERSION=4.3.1   # helm v4 reads its default kube version from build info
COREDNS_VERSION=1.15.0
# Bump the suffix whenever the set of binaries changes: an older cache then rebuilds.
VERSION="k8s-v${K8S_VERSION}_helm-v${HELM_VERSION}_coredns-v${COREDNS_VERSION}_node-1"

CACHE_ROOT="${AVIARY_K8S_CACHE:-${HOME}/.cache/aviary-k8s}"
ROOT="${CACHE_ROOT}/${VERSION}"
BIN="${ROOT}/bin"
NICE="${AVIARY_K8S_NICE:-10}"
BINARIES=(helm kube-apiserver kube-controller-manager kubectl etcd kubelet kube-scheduler kube-proxy coredns pause)
K8S_BINARIES=(kube-apiserver kube-controller-manager kubectl etcd kubelet kube-scheduler kube-proxy)

log() { printf '[ensure-peers] %s\n' "$*" >&2; }

complete() {
  local b
  for b in "${BINARIES[@]}"; do [[ -x "${BIN}/${b}" ]] || return 1; done
  [[ -f "${ROOT}/.complete" ]]
}

step() { # step <name> <command...>: runs niced, records wall time
  local name=$1 start end
  shift
  start=$(date +%s)
  log "step ${name}: start"
  nice -n "${NICE}" "$@" >&2
  end=$(date +%s)
  log "step ${name}: $((end - start))s"
  printf '%s %ss\n' "${name}" "$((end - start))" >>"${TIMES}"
}

main() {
if complete; then
  printf '%s\n' "${BIN}"
  exit 0
fi

command -v go >/dev/null || { log "go is required (Go >= 1.26: helm v${HELM_VERSION}'s go.mod)"; exit 1; }
local gov
gov="$(go env GOVERSION | sed 's/^go//')"
[[ "$(printf '1.26\n%s\n' "${gov}" | sort -V | head -1)" == "1.26" ]] ||
  { log "Go ${gov} is too old: helm v${HELM_VERSION} needs Go >= 1.26"; exit 1; }
command -v flock >/dev/null || { log "flock (util-linux) is required"; exit 1; }
mkdir -p "${ROOT}"
exec 9>"${ROOT}.lock"
log "building peers into ${ROOT} (cold: ~15 min on 2 cores; waits for any build already running)"
flock 9
if complete; then # another process finished the build while we waited
  printf '%s\n' "${BIN}"
  exit 0
fi

mkdir -p "${BIN}" "${ROOT}/src"
TIMES="${ROOT}/build-times.txt"
: >"${TIMES}"
export CGO_ENABLED=0 GOFLAGS="${GOFLAGS:--buildvcs=false}" GOTOOLCHAIN="${GOTOOLCHAIN:-local}"
PROXY="$(go env GOPROXY | cut -d, -f1)"
[[ "${PROXY}" == http* ]] || PROXY="https://proxy.golang.org"


TOTAL_START=$(date +%s)

# ---- helm ------------------------------------------------------------------------------------
if [[ ! -x "${BIN}/helm" ]]; then
  HTMP="$(mktemp -d "${ROOT}/helm.XXXX")"
  step helm env GOBIN="${HTMP}" go install -trimpath \
    -ldflags "-s -w -X helm.sh/helm/v4/internal/version.version=v${HELM_VERSION}" \
    "helm.sh/helm/v4/cmd/helm@v${HELM_VERSION}"
  mv -f "${HTMP}/helm" "${BIN}/helm"
  rm -rf "${HTMP}"
fi

# ---- kubernetes wrapper module ---------------------------------------------------------------
MOD="${ROOT}/src"
if [[ ! -f "${MOD}/go.sum" ]]; then
  cat >"${MOD}/go.mod" <<EOF
module local/k8sbins

go 1.24.0

godebug default=go1.24

require k8s.io/kubernetes v${K8S_VERSION}
EOF
  mkdir -p "${MOD}/etcd"
  cat >"${MOD}/etcd/main.go" <<'EOF'
// Command etcd is the etcd 3.6 server at the version k8s.io/kubernetes pins.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
EOF
  cat >"${MOD}/tools.go" <<'EOF'
//go:build tools

// Package tools pins the commands this module builds so that `go mod tidy` keeps their deps.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kubectl"
	_ "k8s.io/kubernetes/cmd/kubelet"
	_ "k8s.io/kubernetes/cmd/kube-proxy"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
)
EOF
  REPLACES="$(curl -fsSL "${PROXY}/k8s.io/kubernetes/@v/v${K8S_VERSION}.mod" |
    sed -n 's#^[[:space:]]*\(k8s\.io/[A-Za-z0-9._-]*\) => \./staging/.*#\1#p')"
  [[ -n "${REPLACES}" ]] || { log "no staging replaces found in k8s.io/kubernetes v${K8S_VERSION}.mod"; exit 1; }
  ARGS=()
  while read -r m; do ARGS+=("-replace=${m}=${m}@v0.${K8S_VERSION#1.}"); done <<<"${REPLACES}"
  (cd "${MOD}" && go mod edit "${ARGS[@]}")
  step k8s-mod-tidy bash -c "cd '${MOD}' && go mod tidy"
fi

P=k8s.io/component-base/version
C=k8s.io/client-go/pkg/version
MINOR="$(cut -d. -f2 <<<"${K8S_VERSION}")"
LDF="-s -w"
for p in "$P" "$C"; do
  LDF+=" -X ${p}.gitVersion=v${K8S_VERSION} -X ${p}.gitMajor=1 -X ${p}.gitMinor=${MINOR}"
  LDF+=" -X ${p}.gitTreeState=clean -X ${p}.gitCommit=0000000000000000000000000000000000000000"
  LDF+=" -X ${p}.buildDate=1970-01-01T00:00:00Z"
done

missing=()
for b in "${K8S_BINARIES[@]}"; do [[ -x "${BIN}/${b}" ]] || missing+=("${b}"); done
if ((${#missing[@]})); then
  KTMP="$(mktemp -d "${ROOT}/k8s.XXXX")"
  pkgs=()
  for b in "${missing[@]}"; do
    if [[ "${b}" == etcd ]]; then pkgs+=(./etcd); else pkgs+=("k8s.io/kubernetes/cmd/${b}"); fi
  done
  step k8s-build bash -c "cd '${MOD}' && go build -trimpath -ldflags '${LDF}' -o '${KTMP}/' ${pkgs[*]}"
  for b in "${missing[@]}"; do mv -f "${KTMP}/${b}" "${BIN}/${b}"; done
  rm -rf "${KTMP}"
fi

# ---- CoreDNS ---------------------------------------------------------------------------------
if [[ ! -x "${BIN}/coredns" ]]; then
  CTMP="$(mktemp -d "${ROOT}/coredns.XXXX")"
  step coredns env GOBIN="${CTMP}" go install -trimpath -ldflags "-s -w" \
    "github.com/coredns/coredns@v${COREDNS_VERSION}"
  mv -f "${CTMP}/coredns" "${BIN}/coredns"
  rm -rf "${CTMP}"
fi

# ---- pause (the pod sandbox's process) -------------------------------------------------------
if [[ ! -x "${BIN}/pause" ]]; then
  if ! command -v gcc >/dev/null && [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null; then
    log "installing gcc and libc6-dev (a static libc) for the pause binary"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q gcc libc6-dev >&2 ||
      { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q gcc libc6-dev >&2; } || true
  fi
  command -v gcc >/dev/null || { log "gcc (with a static libc: libc6-dev) is required for the pause binary"; exit 1; }
  PAUSE_SRC="$(cd "${MOD}" && go list -m -f '{{.Dir}}' k8s.io/kubernetes)/build/pause/linux/pause.c"
  [[ -f "${PAUSE_SRC}" ]] || { log "no pause.c at ${PAUSE_SRC}"; exit 1; }
  step pause gcc -Os -static -DVERSION="v${K8S_VERSION}-aviary" -o "${BIN}/pause.tmp" "${PAUSE_SRC}"
  strip "${BIN}/pause.tmp" 2>/dev/null || true
  mv -f "${BIN}/pause.tmp" "${BIN}/pause"
fi

TOTAL_END=$(date +%s)
printf 'total %ss\n' "$((TOTAL_END - TOTAL_START))" >>"${TIMES}"
(cd "${BIN}" && ls -l "${BINARIES[@]}" | awk '{print "size " $9 " " $5}') >>"${TIMES}"
touch "${ROOT}/.complete"
log "built in $((TOTAL_END - TOTAL_START))s; times in ${TIMES}"
printf '%s\n' "${BIN}"
}

main "$@"
