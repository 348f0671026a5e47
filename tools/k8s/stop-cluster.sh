#!/usr/bin/env bash
# Stops the processes tools/k8s/start-cluster.sh started for DIR (newest first: the controller
# manager, the API server, etcd): SIGTERM to each one's process group, SIGKILL after 10 s.
# Usage: tools/k8s/stop-cluster.sh [--clean] DIR    (--clean also deletes DIR)
set -euo pipefail

main() {
  local clean=0
  if [[ "${1:-}" == "--clean" ]]; then clean=1; shift; fi
  local dir=${1:?usage: stop-cluster.sh [--clean] DIR}
  if [[ -f "${dir}/pids" ]]; then
    local pids=() pid name i
    while read -r pid name; do pids=("${pid}" "${pids[@]}"); done <"${dir}/pids"
    for pid in "${pids[@]}"; do
      kill -TERM -- "-${pid}" 2>/dev/null || kill -TERM "${pid}" 2>/dev/null || true
      for ((i = 0; i < 100; i++)); do
        kill -0 "${pid}" 2>/dev/null || break
        sleep 0.1
      done
      kill -KILL -- "-${pid}" 2>/dev/null || kill -KILL "${pid}" 2>/dev/null || true
    done
    rm -f "${dir}/pids" "${dir}/ready"
  fi
  if ((clean)); then rm -rf "${dir}"; fi
}

main "$@"
