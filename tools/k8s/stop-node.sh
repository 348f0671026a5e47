#!/usr/bin/env bash
# Tears down what tools/k8s/start-node.sh started for DIR and leaves nothing behind: pods first
# (so CNI DEL and unmounts run), then kube-proxy, kubelet, containerd tasks, containerd, the
# control plane; then shims and container processes by PID, mounts under DIR and the pods'
# netns, kubepods cgroups (leaf first), KUBE-/CNI-/AVIARY-NODE- iptables chains (incl.
# KUBE-FIREWALL), the bridge, ip_forward and bridge-nf-call-iptables as they were, and host
# dirs the node created. Finally audits the host: any leftover is printed as `leftover: ...` on
# stderr and the exit code is 2.
# Usage: tools/k8s/stop-node.sh [--clean] DIR   (--clean also deletes DIR)
set -uo pipefail

BRIDGE=aviary0
LOCK=/run/lock/aviary-node.lock
MARKER=/run/aviary-node.dir

log() { printf '[stop-node] %s\n' "$*" >&2; }

main() {
  local clean=0
  if [[ "${1:-}" == "--clean" ]]; then clean=1; shift; fi
  DIR=${1:?usage: stop-node.sh [--clean] DIR}
  [[ -d "${DIR}" ]] || { log "no such dir ${DIR}"; exit 1; }
  DIR="$(cd "${DIR}" && pwd)"
  HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
  SOCK="${DIR}/containerd/containerd.sock"
  K="${DIR}/admin.kubeconfig"
  BIN="$(sed -n 's/^AVIARY_K8S_BIN=//p' "${DIR}/env" 2>/dev/null)"
  [[ -n "${BIN}" ]] || BIN="$("${HERE}/ensure-peers.sh" 2>/dev/null)"
  local t0
  t0=$(date +%s%N)
  mkdir -p "$(dirname "${LOCK}")"
  exec 9>"${LOCK}"
  flock -w 120 9 || log "lock ${LOCK} busy after 120 s: tearing down anyway"

  phase delete_pods
  phase stop_named kube-proxy kubelet
  phase stop_tasks
  phase stop_named containerd kube-scheduler kube-controller-manager
  phase stop_named kube-apiserver
  phase stop_named etcd
  phase stop_rest
  phase kill_stragglers
  phase unmount_all
  phase remove_cgroups
  phase iptables_cleanup
  ip link del "${BRIDGE}" 2>/dev/null || true
  phase restore_host
  rm -f "${DIR}/pids" "${DIR}/ready"
  [[ "$(cat "${MARKER}" 2>/dev/null)" == "${DIR}" ]] && rm -f "${MARKER}"
  log "torn down in $((($(date +%s%N) - t0) / 1000000)) ms"
  local rc=0
  audit || rc=2
  if ((clean)) && [[ -z "$(mounts_under "${DIR}")" ]]; then rm -rf "${DIR}"; fi
  exit "${rc}"
}

phase() { # phase <function> [args]: runs it, logs its wall time
  local t=$(date +%s%N)
  "$@"
  log "${*} done in $((($(date +%s%N) - t) / 1000000)) ms"
}

alive() { [[ -f "${DIR}/pids" ]] && awk -v n="$1" '$2 == n { print $1 }' "${DIR}/pids" | head -1; }

delete_pods() {
  local api kubelet
  api="$(alive kube-apiserver)"; kubelet="$(alive kubelet)"
  if [[ -z "${api}" || -z "${kubelet}" ]] || ! kill -0 "${api}" 2>/dev/null || ! kill -0 "${kubelet}" 2>/dev/null; then
    log "API server or kubelet not running: skipping graceful pod deletion"
    return 0
  fi
  local kc=("${BIN}/kubectl" --kubeconfig="${K}" --request-timeout=10s)
  # Controllers first, so nothing recreates the pods; then the pods, so kubelet runs CNI DEL.
  "${kc[@]}" delete deployments,statefulsets,daemonsets,replicasets,jobs --all --all-namespaces --wait=false >/dev/null 2>&1 || true
  "${kc[@]}" delete pods --all --all-namespaces --grace-period=1 --wait=false >/dev/null 2>&1 || true
  local i
  for ((i = 0; i < 120; i++)); do
    [[ -z "$("${kc[@]}" get pods --all-namespaces -o name 2>/dev/null)" ]] && break
    sleep 0.5
  done
  local sandboxes
  for ((i = 0; i < 40; i++)); do
    sandboxes="$(ctr --address "${SOCK}" -n k8s.io tasks ls -q 2>/dev/null | wc -l)"
    ((sandboxes == 0)) && break
    sleep 0.5
  done
  log "pods deleted (containerd tasks left: ${sandboxes:-?})"
}

stop_pid() { # stop_pid <pid> [name]: TERM its process group, KILL after 10 s
  local pid=$1 i
  kill -TERM -- "-${pid}" 2>/dev/null || kill -TERM "${pid}" 2>/dev/null || return 0
  for ((i = 0; i < 100; i++)); do
    kill -0 "${pid}" 2>/dev/null || { ((i < 20)) || log "${2:-${pid}} took $((i / 10)) s to stop"; return 0; }
    sleep 0.1
  done
  log "${2:-${pid}} ignored SIGTERM for 10 s: SIGKILL"
  kill -KILL -- "-${pid}" 2>/dev/null || kill -KILL "${pid}" 2>/dev/null || true
}

stop_named() { # stop_named <name...>: SIGTERM to all at once, wait up to 10 s, SIGKILL the rest
  local n pid i pids=() names=()
  for n in "$@"; do
    pid="$(alive "${n}")"
    [[ -n "${pid}" ]] || continue
    kill -TERM -- "-${pid}" 2>/dev/null || kill -TERM "${pid}" 2>/dev/null || continue
    pids+=("${pid}"); names+=("${n}")
  done
  for ((i = 0; i < 100; i++)); do
    local left=0
    for pid in "${pids[@]}"; do kill -0 "${pid}" 2>/dev/null && left=1; done
    ((left)) || return 0
    sleep 0.1
  done
  for i in "${!pids[@]}"; do
    if kill -0 "${pids[i]}" 2>/dev/null; then
      log "${names[i]} ignored SIGTERM for 10 s: SIGKILL"
      kill -KILL -- "-${pids[i]}" 2>/dev/null || kill -KILL "${pids[i]}" 2>/dev/null || true
    fi
  done
}

stop_rest() { # anything else start-node.sh launched
  [[ -f "${DIR}/pids" ]] || return 0
  local pid name
  while read -r pid name; do stop_pid "${pid}" "${name}"; done < <(tac "${DIR}/pids")
}

# Whatever tasks kubelet did not stop: killed and deleted through containerd while it still runs.
stop_tasks() {
  local pid id
  pid="$(alive containerd)"
  [[ -n "${pid}" ]] && kill -0 "${pid}" 2>/dev/null || return 0
  local c=(ctr --address "${SOCK}" -n k8s.io)
  for id in $("${c[@]}" tasks ls -q 2>/dev/null); do
    "${c[@]}" tasks kill -s SIGKILL "${id}" >/dev/null 2>&1 || true
  done
  sleep 0.5
  for id in $("${c[@]}" tasks ls -q 2>/dev/null); do "${c[@]}" tasks delete -f "${id}" >/dev/null 2>&1 || true; done
  for id in $("${c[@]}" containers ls -q 2>/dev/null); do "${c[@]}" containers delete "${id}" >/dev/null 2>&1 || true; done
}

# Shims started for this containerd outlive it; container processes live in kubepods cgroups.
node_pids() {
  local f
  # "[c]" keeps this grep from matching its own command line.
  for f in $(grep -las '[c]ontainerd-shim-runc-v2' /proc/[0-9]*/cmdline); do
    grep -qaF -- "${SOCK}" "${f}" 2>/dev/null && basename "$(dirname "${f}")"
  done
  find /sys/fs/cgroup/*/kubepods -name cgroup.procs -exec cat {} + 2>/dev/null
  return 0
}

kill_stragglers() {
  local pids i
  for ((i = 0; i < 5; i++)); do
    pids="$(node_pids | sort -un | tr '\n' ' ')"
    [[ -z "${pids// /}" ]] && return 0
    log "killing leftover shims/containers: ${pids}"
    # shellcheck disable=SC2086
    kill -KILL ${pids} 2>/dev/null || true
    sleep 0.5
  done
}

mounts_under() { awk -v d="$1" '$2 == d || index($2, d "/") == 1 { print $2 }' /proc/self/mounts; }

node_netns() { # network namespaces the CRI created for this node's pods (absent before start)
  local ns
  for ns in /run/netns/cni-*; do
    [[ -e "${ns}" ]] || continue
    grep -qx "netns=${ns}" "${DIR}/host-before" 2>/dev/null || echo "${ns}"
  done
}

unmount_all() {
  local i m ns
  for ((i = 0; i < 5; i++)); do
    while read -r m; do [[ -n "${m}" ]] && umount -l "${m}" 2>/dev/null; done < <(mounts_under "${DIR}" | awk '{ print length, $0 }' | sort -rn | cut -d' ' -f2-)
    [[ -z "$(mounts_under "${DIR}")" ]] && break
  done
  for ns in $(node_netns); do umount "${ns}" 2>/dev/null; rm -f "${ns}"; done
  if ! grep -qx 'mount=/run/netns' "${DIR}/host-before" 2>/dev/null; then
    while [[ -n "$(mounts_under /run/netns | grep -x /run/netns)" ]]; do umount /run/netns 2>/dev/null || break; done
  fi
}

remove_cgroups() {
  local i
  for ((i = 0; i < 20; i++)); do
    find /sys/fs/cgroup/*/kubepods -depth -type d -exec rmdir {} \; 2>/dev/null
    compgen -G "/sys/fs/cgroup/*/kubepods" >/dev/null || return 0
    sleep 0.3
  done
}

iptables_cleanup() {
  [[ -x "${BIN}/kube-proxy" ]] && "${BIN}/kube-proxy" --cleanup >/dev/null 2>&1
  local tool table save chains
  for tool in iptables ip6tables; do
    for table in filter nat mangle raw; do
      save="$("${tool}-save" -t "${table}" 2>/dev/null)" || continue
      chains="$(sed -n 's/^:\(\(KUBE\|CNI\|AVIARY-NODE\)-[^ ]*\) .*/\1/p' <<<"${save}")"
      {
        printf '*%s\n' "${table}"
        # Jumps into those chains from any chain, then the chains themselves.
        grep -E -- '^-A .* -j (KUBE|CNI|AVIARY-NODE)-' <<<"${save}" | grep -Ev '^-A (KUBE|CNI|AVIARY-NODE)-' | sed 's/^-A /-D /'
        for c in ${chains}; do printf -- '-F %s\n' "${c}"; done
        for c in ${chains}; do printf -- '-X %s\n' "${c}"; done
        printf 'COMMIT\n'
      } | "${tool}-restore" --noflush 2>>"${DIR}/logs/iptables-cleanup.log" || log "${tool}-restore cleanup of ${table} failed (see logs/iptables-cleanup.log)"
    done
  done
}

restore_host() {
  local v
  v="$(sed -n 's/^ip_forward=//p' "${DIR}/host-before" 2>/dev/null)"
  [[ -n "${v}" ]] && echo "${v}" >/proc/sys/net/ipv4/ip_forward
  v="$(sed -n 's/^bridge_nf=//p' "${DIR}/host-before" 2>/dev/null)"
  [[ "${v}" == [01] ]] && echo "${v}" >/proc/sys/net/bridge/bridge-nf-call-iptables
  local d
  for d in /run/containerd /var/lib/cni /var/log/containers /var/log/pods /var/lib/kubelet /etc/cni /opt/cni; do
    if [[ -e "${d}" ]] && ! grep -qx "exists=${d}" "${DIR}/host-before" 2>/dev/null; then
      [[ -z "$(mounts_under "${d}")" ]] && rm -rf "${d}"
    fi
  done
}

audit() {
  local bad=0 pid name x
  leftover() { log "leftover: $*"; bad=1; }
  if [[ -f "${DIR}/pids" ]]; then
    while read -r pid name; do kill -0 "${pid}" 2>/dev/null && leftover "process ${name} (${pid})"; done <"${DIR}/pids"
  fi
  x="$(node_pids | tr '\n' ' ')"; [[ -n "${x// /}" ]] && leftover "shim/container pids ${x}"
  x="$(mounts_under "${DIR}" | tr '\n' ' ')"; [[ -n "${x// /}" ]] && leftover "mounts ${x}"
  x="$(node_netns | tr '\n' ' ')"; [[ -n "${x// /}" ]] && leftover "netns ${x}"
  if ! grep -qx 'mount=/run/netns' "${DIR}/host-before" 2>/dev/null && [[ -n "$(mounts_under /run/netns)" ]]; then
    leftover "mounts $(mounts_under /run/netns | tr '\n' ' ')"
  fi
  for x in /run/containerd /var/lib/cni /var/log/containers /var/log/pods /var/lib/kubelet /etc/cni /opt/cni; do
    [[ -e "${x}" ]] && ! grep -qx "exists=${x}" "${DIR}/host-before" 2>/dev/null && leftover "dir ${x}"
  done
  compgen -G "/sys/fs/cgroup/*/kubepods" >/dev/null && leftover "cgroups $(echo /sys/fs/cgroup/*/kubepods)"
  for x in iptables ip6tables; do
    "${x}-save" 2>/dev/null | grep -Eq '(KUBE|CNI|AVIARY-NODE)-' && leftover "${x} chains: $("${x}-save" | grep -Eo '^:(KUBE|CNI|AVIARY-NODE)-[^ ]*' | tr '\n' ' ')"
  done
  ip link show "${BRIDGE}" >/dev/null 2>&1 && leftover "bridge ${BRIDGE}"
  [[ "ip_forward=$(cat /proc/sys/net/ipv4/ip_forward)" == "$(grep '^ip_forward=' "${DIR}/host-before" 2>/dev/null)" ]] || leftover "ip_forward not restored"
  return "${bad}"
}

main "$@"
