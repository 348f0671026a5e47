#!/usr/bin/env bash
# Starts a real Kubernetes control plane on loopback, without containers or a kubelet:
# etcd, kube-apiserver (token auth, RBAC) and kube-controller-manager, from the binaries that
# tools/k8s/ensure-peers.sh builds and caches.
#
# Usage: tools/k8s/start-cluster.sh [--foreground] [DIR]
#   DIR          state directory (PKI, etcd data, logs, kubeconfig); default: a new temp dir.
#   --foreground stay attached: stop everything on SIGTERM/SIGINT, or when the parent process
#                exits (for test harnesses). Without it the processes keep running; stop them
#                with tools/k8s/stop-cluster.sh DIR.
# Stdout: `export KEY=value` lines (eval-able), also written as KEY=value lines to DIR/env:
#   KUBECONFIG, AVIARY_K8S_DIR, AVIARY_K8S_BIN, AVIARY_K8S_SERVER, AVIARY_K8S_TOKEN,
#   AVIARY_K8S_CA_FILE, AVIARY_K8S_ETCD_PORT, AVIARY_K8S_APISERVER_PORT,
#   AVIARY_K8S_CONTROLLER_MANAGER_PORT. In --foreground mode DIR/ready appears once everything
#   is up. Logs: DIR/logs/<process>.log. Every port is a free loopback port.
set -euo pipefail

main() {
  local foreground=0
  if [[ "${1:-}" == "--foreground" ]]; then foreground=1; shift; fi
  HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
  DIR="${1:-$(mktemp -d "${TMPDIR:-/tmp}/aviary-k8s.XXXXXX")}"
  mkdir -p "${DIR}"
  DIR="$(cd "${DIR}" && pwd)"
  [[ "${DIR}" != *[[:space:]]* ]] || die "state dir must not contain spaces: ${DIR}"
  [[ ! -f "${DIR}/pids" ]] || die "${DIR} already holds a cluster (stop it with stop-cluster.sh)"
  BIN="$("${HERE}/ensure-peers.sh")"
  export NO_PROXY="127.0.0.1,localhost${NO_PROXY:+,${NO_PROXY}}" no_proxy="127.0.0.1,localhost${no_proxy:+,${no_proxy}}"
  mkdir -p "${DIR}/pki" "${DIR}/logs" "${DIR}/etcd" "${DIR}/kcm"
  : >"${DIR}/pids"

  if ((foreground)); then
    PARENT="${PPID}"
    trap 'stop_all; exit 0' TERM INT HUP
    trap 'stop_all' EXIT
  else
    trap 'rc=$?; if ((rc != 0)); then stop_all; fi' EXIT
  fi

  pki
  local etcd_port etcd_peer api_port kcm_port
  etcd_port="$(free_port)"; etcd_peer="$(free_port)"; api_port="$(free_port)"; kcm_port="$(free_port)"
  local server="https://127.0.0.1:${api_port}"

  launch etcd "${BIN}/etcd" --name=aviary --data-dir="${DIR}/etcd" \
    --listen-client-urls="http://127.0.0.1:${etcd_port}" --advertise-client-urls="http://127.0.0.1:${etcd_port}" \
    --listen-peer-urls="http://127.0.0.1:${etcd_peer}" --initial-advertise-peer-urls="http://127.0.0.1:${etcd_peer}" \
    --initial-cluster="aviary=http://127.0.0.1:${etcd_peer}" --unsafe-no-fsync=true --log-level=warn
  wait_for etcd 60 curl -fsS "http://127.0.0.1:${etcd_port}/health"

  launch kube-apiserver "${BIN}/kube-apiserver" \
    --etcd-servers="http://127.0.0.1:${etcd_port}" --bind-address=127.0.0.1 --advertise-address=127.0.0.1 \
    --secure-port="${api_port}" --endpoint-reconciler-type=none \
    --tls-cert-file="${DIR}/pki/apiserver.crt" --tls-private-key-file="${DIR}/pki/apiserver.key" \
    --client-ca-file="${DIR}/pki/ca.crt" --token-auth-file="${DIR}/pki/tokens.csv" \
    --authorization-mode=Node,RBAC --service-account-issuer=https://kubernetes.default.svc \
    --service-account-key-file="${DIR}/pki/sa.pub" --service-account-signing-key-file="${DIR}/pki/sa.key" \
    --service-cluster-ip-range=10.0.0.0/24 --allow-privileged=true --cert-dir="${DIR}/pki" \
    --profiling=false --v=1
  wait_for kube-apiserver 180 curl -fsS --cacert "${DIR}/pki/ca.crt" -H "Authorization: Bearer ${TOKEN}" "${server}/readyz"

  kubeconfig "${server}"
  launch kube-controller-manager "${BIN}/kube-controller-manager" \
    --kubeconfig="${DIR}/admin.kubeconfig" --authentication-kubeconfig="${DIR}/admin.kubeconfig" \
    --authorization-kubeconfig="${DIR}/admin.kubeconfig" --leader-elect=false \
    --bind-address=127.0.0.1 --secure-port="${kcm_port}" --cert-dir="${DIR}/kcm" \
    --service-account-private-key-file="${DIR}/pki/sa.key" --root-ca-file="${DIR}/pki/ca.crt" \
    --cluster-signing-cert-file="${DIR}/pki/ca.crt" --cluster-signing-key-file="${DIR}/pki/ca.key" \
    --use-service-account-credentials=false --profiling=false --v=1
  wait_for kube-controller-manager 120 curl -fsSk "https://127.0.0.1:${kcm_port}/healthz"

  cat >"${DIR}/env" <<EOF
KUBECONFIG=${DIR}/admin.kubeconfig
AVIARY_K8S_DIR=${DIR}
AVIARY_K8S_BIN=${BIN}
AVIARY_K8S_SERVER=${server}
AVIARY_K8S_TOKEN=${TOKEN}
AVIARY_K8S_CA_FILE=${DIR}/pki/ca.crt
AVIARY_K8S_ETCD_PORT=${etcd_port}
AVIARY_K8S_APISERVER_PORT=${api_port}
AVIARY_K8S_CONTROLLER_MANAGER_PORT=${kcm_port}
EOF
  sed 's/^/export /' "${DIR}/env"

  if ((foreground)); then
    touch "${DIR}/ready"
    # Wake up every second to notice a vanished parent; signals interrupt `wait` at once.
    while kill -0 "${PARENT}" 2>/dev/null; do
      check_alive
      sleep 1 &
      wait $! || true
    done
    log "parent ${PARENT} exited: stopping"
  fi
}

log() { printf '[start-cluster] %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

free_port() {
  # Bind port 0 on loopback and report what the kernel picked (node or python3, whichever exists).
  if command -v node >/dev/null; then
    node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
  else
    python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1]);s.close()'
  fi
}

launch() { # launch <name> <cmd...>: background process, own process group, logs to DIR/logs
  local name=$1
  shift
  log "starting ${name}"
  setsid "$@" >"${DIR}/logs/${name}.log" 2>&1 </dev/null &
  printf '%s %s\n' "$!" "${name}" >>"${DIR}/pids"
}

check_alive() {
  local pid name
  while read -r pid name; do
    kill -0 "${pid}" 2>/dev/null || die "${name} (pid ${pid}) exited; see ${DIR}/logs/${name}.log"
  done <"${DIR}/pids"
}

wait_for() { # wait_for <name> <seconds> <probe cmd...>
  local name=$1 secs=$2 start
  shift 2
  start=$(date +%s)
  until "$@" >/dev/null 2>&1; do
    check_alive
    if (($(date +%s) - start > secs)); then
      tail -n 30 "${DIR}/logs/${name}.log" >&2 || true
      die "${name} not ready after ${secs}s"
    fi
    sleep 0.3
  done
  log "${name} ready after $(($(date +%s) - start))s"
}

stop_all() {
  [[ -f "${DIR}/pids" ]] || return 0
  "${HERE}/stop-cluster.sh" "${DIR}" || true
}

pki() {
  # CA; apiserver serving cert for loopback and the in-cluster names; service-account key pair;
  # the admin identity is a static bearer token in system:masters (token-auth-file).
  local p="${DIR}/pki"
  openssl ecparam -name prime256v1 -genkey -noout -out "${p}/ca.key" 2>/dev/null
  openssl req -x509 -new -key "${p}/ca.key" -sha256 -days 3650 -subj "/CN=aviary-e2e-ca" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" \
    -out "${p}/ca.crt" 2>/dev/null
  openssl ecparam -name prime256v1 -genkey -noout -out "${p}/apiserver.key" 2>/dev/null
  openssl req -new -key "${p}/apiserver.key" -subj "/CN=kube-apiserver" -out "${p}/apiserver.csr" 2>/dev/null
  cat >"${p}/apiserver.ext" <<'EOF'
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,IP:10.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local
EOF
  openssl x509 -req -in "${p}/apiserver.csr" -CA "${p}/ca.crt" -CAkey "${p}/ca.key" -CAcreateserial \
    -days 365 -sha256 -extfile "${p}/apiserver.ext" -out "${p}/apiserver.crt" 2>/dev/null
  openssl genrsa -out "${p}/sa.key" 2048 2>/dev/null
  openssl rsa -in "${p}/sa.key" -pubout -out "${p}/sa.pub" 2>/dev/null
  TOKEN="$(openssl rand -hex 32)"
  printf '%s,aviary-admin,aviary-admin-uid,"system:masters"\n' "${TOKEN}" >"${p}/tokens.csv"
  chmod 600 "${p}"/*.key "${p}/tokens.csv"
}

kubeconfig() {
  local server=$1 ca
  ca="$(base64 -w0 <"${DIR}/pki/ca.crt")"
  cat >"${DIR}/admin.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
  - name: aviary-e2e
    cluster:
      server: ${server}
      certificate-authority-data: ${ca}
users:
  - name: aviary-admin
    user:
      token: ${TOKEN}
contexts:
  - name: aviary-e2e
    context:
      cluster: aviary-e2e
      user: aviary-admin
current-context: aviary-e2e
EOF
  chmod 600 "${DIR}/admin.kubeconfig"
}

main "$@"
