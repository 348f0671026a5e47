# Functions of tools/k8s/start-node.sh (sourced; expects DIR, BIN, HERE and the network constants).
# shellcheck shell=bash

free_port() {
  node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

launch() { # launch <name> <cmd...>: background process, own process group, logs to DIR/logs
  local name=$1
  shift
  log "starting ${name}"
  setsid "$@" >"${DIR}/logs/${name}.log" 2>&1 </dev/null 9>&- &
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
      tail -n 40 "${DIR}/logs/${name}.log" >&2 2>/dev/null || true
      die "${name} not ready after ${secs}s"
    fi
    sleep 0.3
  done
  log "${name} ready after $(($(date +%s) - start))s"
}

stop_all() {
  [[ -f "${DIR}/pids" ]] || return 0
  "${HERE}/stop-node.sh" "${DIR}" || true
}

# What teardown must give back: compared by stop-node.sh (and the e2e) after everything stopped.
snapshot_host() {
  printf 'ip_forward=%s\n' "$(cat /proc/sys/net/ipv4/ip_forward)"
  printf 'bridge_nf=%s\n' "$(cat /proc/sys/net/bridge/bridge-nf-call-iptables 2>/dev/null || echo absent)"
  for d in /run/containerd /var/lib/cni /var/log/containers /var/log/pods /var/lib/kubelet /etc/cni /opt/cni; do
    [[ -e "${d}" ]] && printf 'exists=%s\n' "${d}"
  done
  for d in /run/netns/cni-*; do [[ -e "${d}" ]] && printf 'netns=%s\n' "${d}"; done
  # The CNI library turns /run/netns into a (shared) mount point of its own the first time.
  awk '$2 == "/run/netns" { print "mount=/run/netns" }' /proc/self/mounts
  return 0
}

network() {
  log "bridge ${BRIDGE} ${NODE_IP}/24, Service route ${SERVICE_CIDR}, containment rules"
  ip link add "${BRIDGE}" type bridge
  ip addr add "${NODE_IP}/24" dev "${BRIDGE}"
  ip link set "${BRIDGE}" up
  # Service IPs from the host go to the bridge (kube-proxy DNATs them), never to a default route.
  ip route add "${SERVICE_CIDR}" dev "${BRIDGE}" src "${NODE_IP}"
  # Nothing is forwarded between the bridge and any other interface, in either direction. mangle
  # FORWARD runs before the filter chains kube-proxy and kubelet manage.
  iptables -t mangle -N AVIARY-NODE-CONTAIN
  iptables -t mangle -A AVIARY-NODE-CONTAIN -i "${BRIDGE}" ! -o "${BRIDGE}" -j DROP
  iptables -t mangle -A AVIARY-NODE-CONTAIN ! -i "${BRIDGE}" -o "${BRIDGE}" -j DROP
  iptables -t mangle -I FORWARD 1 -j AVIARY-NODE-CONTAIN
  echo 1 >/proc/sys/net/ipv4/ip_forward
  if [[ -e /proc/sys/net/bridge/bridge-nf-call-iptables ]]; then
    echo 1 >/proc/sys/net/bridge/bridge-nf-call-iptables
  else
    modprobe br_netfilter 2>/dev/null || die "br_netfilter is needed for Service traffic between pods on one bridge"
  fi
}

pki() {
  local p="${DIR}/pki"
  openssl ecparam -name prime256v1 -genkey -noout -out "${p}/ca.key" 2>/dev/null
  openssl req -x509 -new -key "${p}/ca.key" -subj "/CN=aviary-node-ca" -days 30 -sha256 \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" \
    -out "${p}/ca.crt" 2>/dev/null
  leaf apiserver "/CN=kube-apiserver" serverAuth \
    "subjectAltName=IP:${NODE_IP},IP:${KUBERNETES_SVC_IP},IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
  leaf apiserver-kubelet "/O=system:masters/CN=kube-apiserver-kubelet-client" clientAuth ""
  leaf kubelet-serving "/O=system:nodes/CN=system:node:${NODE_NAME}" serverAuth "subjectAltName=IP:${NODE_IP},DNS:${NODE_NAME}"
  openssl genrsa -out "${p}/sa.key" 2048 2>/dev/null
  openssl rsa -in "${p}/sa.key" -pubout -out "${p}/sa.pub" 2>/dev/null
  TOKEN="$(openssl rand -hex 32)"
  {
    printf '%s,aviary-admin,aviary-admin-uid,"system:masters"\n' "${TOKEN}"
    printf '%s,system:kube-controller-manager,kcm-uid\n' "$(openssl rand -hex 32)"
    printf '%s,system:kube-scheduler,scheduler-uid\n' "$(openssl rand -hex 32)"
    printf '%s,system:kube-proxy,kube-proxy-uid\n' "$(openssl rand -hex 32)"
    printf '%s,system:node:%s,node-uid,"system:nodes"\n' "$(openssl rand -hex 32)" "${NODE_NAME}"
  } >"${p}/tokens.csv"
  chmod 600 "${p}"/*.key "${p}/tokens.csv"
}

leaf() { # leaf <name> <subject> <eku> <extra ext line>
  local p="${DIR}/pki" name=$1
  openssl ecparam -name prime256v1 -genkey -noout -out "${p}/${name}.key" 2>/dev/null
  openssl req -new -key "${p}/${name}.key" -subj "$2" -out "${p}/${name}.csr" 2>/dev/null
  printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=%s\n%s\n' "$3" "$4" >"${p}/${name}.ext"
  openssl x509 -req -in "${p}/${name}.csr" -CA "${p}/ca.crt" -CAkey "${p}/ca.key" -CAcreateserial \
    -days 30 -sha256 -extfile "${p}/${name}.ext" -out "${p}/${name}.crt" 2>/dev/null
}

tok() { awk -F, -v u="$1" '$2 == u { print $1 }' "${DIR}/pki/tokens.csv"; }

kubeconfig() { # kubeconfig <name> <token>: DIR/<name>.kubeconfig
  local ca
  ca="$(base64 -w0 <"${DIR}/pki/ca.crt")"
  cat >"${DIR}/$1.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
  - name: aviary-node
    cluster:
      server: ${SERVER}
      certificate-authority-data: ${ca}
users:
  - name: $1
    user:
      token: $2
contexts:
  - name: aviary-node
    context:
      cluster: aviary-node
      user: $1
current-context: aviary-node
EOF
  chmod 600 "${DIR}/$1.kubeconfig"
}

containerd_config() {
  local c="${DIR}/containerd"
  SOCK="${c}/containerd.sock"
  mkdir -p "${c}/root" "${c}/state" "${c}/runc" "${c}/opt"
  # restrict_oom_score_adj: this root lacks CAP_SYS_RESOURCE; without it no pod sandbox starts.
  cat >"${c}/config.toml" <<EOF
version = 2
root = "${c}/root"
state = "${c}/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = "${SOCK}"

[ttrpc]
  address = "${SOCK}.ttrpc"

[debug]
  address = ""

[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "${c}/opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "${PAUSE_IMAGE}"
  restrict_oom_score_adj = true
  enable_selinux = false
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "${c}/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "${DIR}/cni/net.d"
    max_conf_num = 1
EOF
  # Pods: the Service range via the bridge address and nothing else (no default route, no masquerade).
  cat >"${DIR}/cni/net.d/10-aviary.conflist" <<EOF
{
  "cniVersion": "0.4.0",
  "name": "aviary-node",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "${BRIDGE}",
      "isGateway": true,
      "isDefaultGateway": false,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "${DIR}/cni/ipam",
        "ranges": [[{ "subnet": "${POD_CIDR}", "gateway": "${NODE_IP}" }]],
        "routes": [{ "dst": "${SERVICE_CIDR}", "gw": "${NODE_IP}" }]
      }
    }
  ]
}
EOF
}

# A one-layer OCI image of a static binary (GNU tar, sorted, zero mtimes: reproducible).
static_image() { # static_image <name> <binary> <file.tar> [entrypoint args...]
  local name=$1 bin=$2 out=$3 work
  shift 3
  work="$(mktemp -d "${DIR}/images/build.XXXX")"
  mkdir -p "${work}/rootfs/bin" "${work}/layout/blobs/sha256"
  cp "${bin}" "${work}/rootfs/bin/$(basename "${bin}")"
  tar -C "${work}/rootfs" --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -cf "${work}/layer.tar" bin
  gzip -n -c "${work}/layer.tar" >"${work}/layer.tar.gz"
  local diff layer lsize cfg csize man msize ep
  diff="$(sha256sum <"${work}/layer.tar" | cut -d' ' -f1)"
  layer="$(sha256sum <"${work}/layer.tar.gz" | cut -d' ' -f1)"
  lsize="$(stat -c %s "${work}/layer.tar.gz")"
  cp "${work}/layer.tar.gz" "${work}/layout/blobs/sha256/${layer}"
  ep="$(printf '"%s",' "/bin/$(basename "${bin}")" "$@")"
  printf '{"architecture":"amd64","os":"linux","config":{"Entrypoint":[%s],"User":"65534:65534","WorkingDir":"/"},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
    "${ep%,}" "${diff}" >"${work}/config.json"
  cfg="$(sha256sum <"${work}/config.json" | cut -d' ' -f1)"
  csize="$(stat -c %s "${work}/config.json")"
  cp "${work}/config.json" "${work}/layout/blobs/sha256/${cfg}"
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:%s","size":%s}]}' \
    "${cfg}" "${csize}" "${layer}" "${lsize}" >"${work}/manifest.json"
  man="$(sha256sum <"${work}/manifest.json" | cut -d' ' -f1)"
  msize="$(stat -c %s "${work}/manifest.json")"
  cp "${work}/manifest.json" "${work}/layout/blobs/sha256/${man}"
  printf '{"imageLayoutVersion":"1.0.0"}' >"${work}/layout/oci-layout"
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"io.containerd.image.name":"%s","org.opencontainers.image.ref.name":"%s"}}]}' \
    "${man}" "${msize}" "${name}" "${name##*:}" >"${work}/layout/index.json"
  tar -C "${work}/layout" --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -cf "${out}" oci-layout index.json blobs
  rm -rf "${work}"
}

import_images() {
  local v
  v="$(basename "$(dirname "${BIN}")")"
  static_image "${PAUSE_IMAGE}" "${BIN}/pause" "${DIR}/images/pause.tar"
  static_image "${COREDNS_IMAGE}" "${BIN}/coredns" "${DIR}/images/coredns.tar" -conf /etc/coredns/Corefile
  for f in pause coredns; do
    ctr --address "${SOCK}" -n k8s.io images import "${DIR}/images/${f}.tar" >&2
  done
  log "imported pause and CoreDNS images (${v})"
}

kubelet_config() {
  local health=$1
  mkdir -p "${DIR}/kubelet/pki"
  : >"${DIR}/kubelet/resolv.conf"
  cat >"${DIR}/kubelet/config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: ${NODE_IP}
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: ${health}
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
tlsCertFile: ${DIR}/pki/kubelet-serving.crt
tlsPrivateKeyFile: ${DIR}/pki/kubelet-serving.key
authentication:
  anonymous: { enabled: false }
  webhook: { enabled: true }
  x509: { clientCAFile: ${DIR}/pki/ca.crt }
authorization:
  mode: Webhook
clusterDomain: cluster.local
clusterDNS: [${DNS_IP}]
resolvConf: ${DIR}/kubelet/resolv.conf
podLogsDir: ${DIR}/pod-logs
staticPodPath: ""
serializeImagePulls: false
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: { memory.available: "50Mi", nodefs.available: "1%", imagefs.available: "1%", nodefs.inodesFree: "1%" }
maxPods: 60
protectKernelDefaults: false
makeIPTablesUtilChains: true
localStorageCapacityIsolation: true
EOF
}

proxy_config() {
  cat >"${DIR}/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
bindAddress: ${NODE_IP}
healthzBindAddress: 127.0.0.1:$1
metricsBindAddress: 127.0.0.1:$2
clusterCIDR: ${POD_CIDR}
nodePortAddresses: ["${NODE_IP}/32"]
clientConnection:
  kubeconfig: ${DIR}/kube-proxy.kubeconfig
conntrack:
  maxPerCore: 0
EOF
}

coredns() {
  "${BIN}/kubectl" --kubeconfig="${DIR}/admin.kubeconfig" apply -f - >"${DIR}/logs/coredns-apply.log" <<EOF
apiVersion: v1
kind: ServiceAccount
metadata: { name: coredns, namespace: kube-system }
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: { name: "system:coredns" }
rules:
  - apiGroups: [""]
    resources: [endpoints, services, pods, namespaces]
    verbs: [list, watch]
  - apiGroups: [discovery.k8s.io]
    resources: [endpointslices]
    verbs: [list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: { name: "system:coredns" }
roleRef: { apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "system:coredns" }
subjects: [{ kind: ServiceAccount, name: coredns, namespace: kube-system }]
---
# No forward plugin: names outside cluster.local get no answer, so no query leaves the machine.
apiVersion: v1
kind: ConfigMap
metadata: { name: coredns, namespace: kube-system }
data:
  Corefile: |
    .:1053 {
        errors
        health :8080
        ready :8181
        kubernetes cluster.local in-addr.arpa ip6.arpa {
            pods insecure
            fallthrough in-addr.arpa ip6.arpa
        }
        cache 30
        loop
        reload
    }
---
apiVersion: apps/v1
kind: Deployment
metadata: { name: coredns, namespace: kube-system, labels: { k8s-app: kube-dns } }
spec:
  replicas: 1
  selector: { matchLabels: { k8s-app: kube-dns } }
  template:
    metadata: { labels: { k8s-app: kube-dns } }
    spec:
      serviceAccountName: coredns
      dnsPolicy: Default
      priorityClassName: system-cluster-critical
      securityContext: { runAsNonRoot: true, runAsUser: 65534, runAsGroup: 65534, seccompProfile: { type: RuntimeDefault } }
      containers:
        - name: coredns
          image: ${COREDNS_IMAGE}
          imagePullPolicy: Never
          ports:
            - { name: dns, containerPort: 1053, protocol: UDP }
            - { name: dns-tcp, containerPort: 1053, protocol: TCP }
          readinessProbe: { httpGet: { path: /ready, port: 8181 }, periodSeconds: 2 }
          livenessProbe: { httpGet: { path: /health, port: 8080 }, periodSeconds: 10 }
          resources: { requests: { cpu: 50m, memory: 32Mi }, limits: { memory: 128Mi } }
          securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: [ALL] } }
          volumeMounts: [{ name: config, mountPath: /etc/coredns, readOnly: true }]
      volumes: [{ name: config, configMap: { name: coredns } }]
---
apiVersion: v1
kind: Service
metadata: { name: kube-dns, namespace: kube-system, labels: { k8s-app: kube-dns } }
spec:
  clusterIP: ${DNS_IP}
  selector: { k8s-app: kube-dns }
  ports:
    - { name: dns, port: 53, targetPort: 1053, protocol: UDP }
    - { name: dns-tcp, port: 53, targetPort: 1053, protocol: TCP }
EOF
}
