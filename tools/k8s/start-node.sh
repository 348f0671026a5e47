#!/usr/bin/env bash
# Starts a real single-node Kubernetes on this machine (root, no systemd, no Docker):
# etcd, kube-apiserver, kube-controller-manager, kube-scheduler, containerd (Debian), kubelet,
# kube-proxy (iptables mode) and CoreDNS as a pod, from the binaries tools/k8s/ensure-peers.sh
# caches and the packages tools/k8s/ensure-node.mjs installs. Facts: ../shared/k8s-node.md.
#
# Usage: tools/k8s/start-node.sh [--foreground] [DIR]
#   DIR          state dir (PKI, etcd, containerd and kubelet roots, logs); default: a temp dir.
#   --foreground stop everything on SIGTERM/SIGINT or when the parent process exits.
#                Without it, stop with tools/k8s/stop-node.sh DIR.
# Stdout: `export KEY=value` lines, also in DIR/env: KUBECONFIG, AVIARY_K8S_DIR, AVIARY_K8S_BIN,
#   AVIARY_K8S_SERVER, AVIARY_K8S_TOKEN, AVIARY_K8S_CA_FILE, AVIARY_NODE_NAME,
#   AVIARY_CONTAINERD_SOCKET, AVIARY_NODE_DNS. DIR/ready appears once the node and CoreDNS are Ready.
#
# Network (fixed; one node per machine, guarded by a lock): bridge aviary0 = 10.244.0.1/24 (node
# IP, API server on :6443), pods 10.244.0.0/24, Services 10.96.0.0/16, DNS 10.96.0.10.
# Containment: pods get a route to the Service range only (no default route), no masquerade; the
# mangle FORWARD chain drops anything forwarded between the bridge and any other interface;
# NodePorts only on the bridge address; everything else listens on loopback.
set -euo pipefail

BRIDGE=aviary0
NODE_IP=10.244.0.1
POD_CIDR=10.244.0.0/24
SERVICE_CIDR=10.96.0.0/16
KUBERNETES_SVC_IP=10.96.0.1
DNS_IP=10.96.0.10
NODE_NAME=aviary-node
API_PORT=6443
# Images of the binaries ensure-peers.sh builds (pause.c, CoreDNS): imported, never pulled.
PAUSE_IMAGE=docker.io/aviary/pause:v1.34.4
COREDNS_IMAGE=docker.io/aviary/coredns:v1.15.0
LOCK=/run/lock/aviary-node.lock
MARKER=/run/aviary-node.dir

log() { printf '[start-node] %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

main() {
  local foreground=0
  if [[ "${1:-}" == "--foreground" ]]; then foreground=1; shift; fi
  HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
  [[ "$(id -u)" == 0 ]] || die "must run as root (containerd, kubelet, iptables, a bridge)"
  DIR="${1:-$(mktemp -d "${TMPDIR:-/tmp}/aviary-node.XXXXXX")}"
  mkdir -p "${DIR}"
  DIR="$(cd "${DIR}" && pwd)"
  [[ "${DIR}" != *[[:space:]]* ]] || die "state dir must not contain spaces: ${DIR}"
  BIN="$("${HERE}/ensure-peers.sh")"
  node "${HERE}/ensure-node.mjs" >&2
  T0=$(date +%s%N)

  mkdir -p "$(dirname "${LOCK}")"
  exec 9>"${LOCK}"
  flock -w 120 9 || die "another start/stop of the node holds ${LOCK}"
  if [[ -f "${MARKER}" ]]; then
    local other pid name live=0
    other="$(cat "${MARKER}")"
    if [[ -f "${other}/pids" ]]; then
      while read -r pid name; do kill -0 "${pid}" 2>/dev/null && live=1; done <"${other}/pids"
    fi
    ((live == 0)) || die "a node is already running from ${other} (one per machine): stop it with tools/k8s/stop-node.sh ${other}"
    # A node whose processes all died (a killed test run): clear what it left, then go on.
    log "tearing down the dead node left in ${other}"
    flock -u 9
    "${HERE}/stop-node.sh" "${other}" >&2 || die "could not clear the node left in ${other}"
    flock -w 120 9 || die "another start/stop of the node holds ${LOCK}"
    rm -f "${MARKER}"
  fi
  ip link show "${BRIDGE}" >/dev/null 2>&1 && die "bridge ${BRIDGE} exists: a node is running or was not torn down (tools/k8s/stop-node.sh)"
  printf '%s\n' "${DIR}" >"${MARKER}"
  mkdir -p "${DIR}"/{pki,logs,etcd,kcm,containerd,cni/net.d,cni/ipam,kubelet,pod-logs,manifests,images}
  : >"${DIR}/pids"
  snapshot_host >"${DIR}/host-before"

  if ((foreground)); then
    PARENT="${PPID}"
    trap 'stop_all; exit 0' TERM INT HUP
    trap 'stop_all' EXIT
  else
    trap 'rc=$?; if ((rc != 0)); then stop_all; fi' EXIT
  fi

  network
  pki
  local etcd_port etcd_peer kcm_port sched_port proxy_health proxy_metrics kubelet_health
  etcd_port="$(free_port)"; etcd_peer="$(free_port)"; kcm_port="$(free_port)"; sched_port="$(free_port)"
  proxy_health="$(free_port)"; proxy_metrics="$(free_port)"; kubelet_health="$(free_port)"
  SERVER="https://${NODE_IP}:${API_PORT}"
  export NO_PROXY="127.0.0.1,localhost,${NODE_IP},${SERVICE_CIDR},${POD_CIDR}${NO_PROXY:+,${NO_PROXY}}"
  export no_proxy="${NO_PROXY}"

  launch etcd "${BIN}/etcd" --name=aviary --data-dir="${DIR}/etcd" \
    --listen-client-urls="http://127.0.0.1:${etcd_port}" --advertise-client-urls="http://127.0.0.1:${etcd_port}" \
    --listen-peer-urls="http://127.0.0.1:${etcd_peer}" --initial-advertise-peer-urls="http://127.0.0.1:${etcd_peer}" \
    --initial-cluster="aviary=http://127.0.0.1:${etcd_peer}" --unsafe-no-fsync=true --log-level=warn \
    --listen-metrics-urls=""
  wait_for etcd 60 curl -fsS "http://127.0.0.1:${etcd_port}/health"

  # kubelet refuses a loopback node IP: the API server binds and advertises the bridge address.
  launch kube-apiserver "${BIN}/kube-apiserver" \
    --etcd-servers="http://127.0.0.1:${etcd_port}" --bind-address="${NODE_IP}" --advertise-address="${NODE_IP}" \
    --secure-port="${API_PORT}" --endpoint-reconciler-type=lease \
    --tls-cert-file="${DIR}/pki/apiserver.crt" --tls-private-key-file="${DIR}/pki/apiserver.key" \
    --client-ca-file="${DIR}/pki/ca.crt" --token-auth-file="${DIR}/pki/tokens.csv" \
    --kubelet-client-certificate="${DIR}/pki/apiserver-kubelet.crt" --kubelet-client-key="${DIR}/pki/apiserver-kubelet.key" \
    --kubelet-preferred-address-types=InternalIP \
    --authorization-mode=Node,RBAC --service-account-issuer=https://kubernetes.default.svc \
    --service-account-key-file="${DIR}/pki/sa.pub" --service-account-signing-key-file="${DIR}/pki/sa.key" \
    --api-audiences=https://kubernetes.default.svc,istio-ca \
    --service-cluster-ip-range="${SERVICE_CIDR}" --allow-privileged=true --cert-dir="${DIR}/pki" \
    --enable-admission-plugins=NodeRestriction --profiling=false --v=1
  wait_for kube-apiserver 180 curl -fsS --cacert "${DIR}/pki/ca.crt" -H "Authorization: Bearer ${TOKEN}" "${SERVER}/readyz"

  kubeconfig admin "${TOKEN}"
  kubeconfig controller-manager "$(tok system:kube-controller-manager)"
  kubeconfig scheduler "$(tok system:kube-scheduler)"
  kubeconfig kubelet "$(tok "system:node:${NODE_NAME}")"
  kubeconfig kube-proxy "$(tok system:kube-proxy)"
  local K="${DIR}/admin.kubeconfig"

  launch kube-controller-manager "${BIN}/kube-controller-manager" \
    --kubeconfig="${DIR}/controller-manager.kubeconfig" --authentication-kubeconfig="${DIR}/controller-manager.kubeconfig" \
    --authorization-kubeconfig="${DIR}/controller-manager.kubeconfig" --leader-elect=false \
    --controllers='*,-nodeipam' --bind-address=127.0.0.1 --secure-port="${kcm_port}" --cert-dir="${DIR}/kcm" \
    --service-account-private-key-file="${DIR}/pki/sa.key" --root-ca-file="${DIR}/pki/ca.crt" \
    --cluster-signing-cert-file="${DIR}/pki/ca.crt" --cluster-signing-key-file="${DIR}/pki/ca.key" \
    --use-service-account-credentials=true --service-cluster-ip-range="${SERVICE_CIDR}" --profiling=false --v=1
  launch kube-scheduler "${BIN}/kube-scheduler" \
    --kubeconfig="${DIR}/scheduler.kubeconfig" --authentication-kubeconfig="${DIR}/scheduler.kubeconfig" \
    --authorization-kubeconfig="${DIR}/scheduler.kubeconfig" --leader-elect=false \
    --bind-address=127.0.0.1 --secure-port="${sched_port}" --profiling=false --v=1

  containerd_config
  launch containerd containerd --config "${DIR}/containerd/config.toml"
  wait_for containerd 60 ctr --address "${SOCK}" version
  import_images

  kubelet_config "${kubelet_health}"
  launch kubelet "${BIN}/kubelet" --config="${DIR}/kubelet/config.yaml" \
    --kubeconfig="${DIR}/kubelet.kubeconfig" --container-runtime-endpoint="unix://${SOCK}" \
    --root-dir="${DIR}/kubelet" --hostname-override="${NODE_NAME}" --node-ip="${NODE_IP}" \
    --cert-dir="${DIR}/kubelet/pki" --v=1
  proxy_config "${proxy_health}" "${proxy_metrics}"
  launch kube-proxy "${BIN}/kube-proxy" --config="${DIR}/kube-proxy.yaml" --hostname-override="${NODE_NAME}" --v=1
  wait_for kube-controller-manager 120 curl -fsSk "https://127.0.0.1:${kcm_port}/healthz"
  wait_for kube-scheduler 120 curl -fsSk "https://127.0.0.1:${sched_port}/healthz"
  wait_for kube-proxy 120 curl -fsS "http://127.0.0.1:${proxy_health}/healthz"
  wait_for kubelet 120 "${BIN}/kubectl" --kubeconfig="${K}" wait --for=condition=Ready "node/${NODE_NAME}" --timeout=2s
  log "node Ready after $((($(date +%s%N) - T0) / 1000000)) ms"

  coredns
  wait_for coredns 180 "${BIN}/kubectl" --kubeconfig="${K}" -n kube-system wait --for=condition=Available deploy/coredns --timeout=2s

  cat >"${DIR}/env" <<EOF
KUBECONFIG=${K}
AVIARY_K8S_DIR=${DIR}
AVIARY_K8S_BIN=${BIN}
AVIARY_K8S_SERVER=${SERVER}
AVIARY_K8S_TOKEN=${TOKEN}
AVIARY_K8S_CA_FILE=${DIR}/pki/ca.crt
AVIARY_NODE_NAME=${NODE_NAME}
AVIARY_CONTAINERD_SOCKET=${SOCK}
AVIARY_NODE_DNS=${DNS_IP}
EOF
  sed 's/^/export /' "${DIR}/env"
  log "node and CoreDNS ready after $((($(date +%s%N) - T0) / 1000000)) ms"
  flock -u 9

  if ((foreground)); then
    touch "${DIR}/ready"
    while kill -0 "${PARENT}" 2>/dev/null; do
      check_alive
      sleep 1 &
      wait $! || true
    done
    log "parent ${PARENT} exited: stopping"
  fi
}

# shellcheck source=tools/k8s/node-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/node-lib.sh"

main "$@"
