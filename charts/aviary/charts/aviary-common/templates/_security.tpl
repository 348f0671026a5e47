{{/*
Hardened security contexts (Pod Security Standard "restricted"): non-root uid 1337 (the uid the
Dockerfiles run as), read-only root filesystem, no privilege escalation, all capabilities
dropped, RuntimeDefault seccomp. Writable paths are emptyDir volumes (/tmp, the data dir).
*/}}
{{- define "aviary-common.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.securityContext.runAsUser }}
runAsGroup: {{ .Values.securityContext.runAsGroup }}
fsGroup: {{ .Values.securityContext.runAsGroup }}
seccompProfile:
  type: RuntimeDefault
{{- with .Values.securityContext.sysctls }}
sysctls:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{- define "aviary-common.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.securityContext.runAsUser }}
runAsGroup: {{ .Values.securityContext.runAsGroup }}
privileged: false
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop:
    - ALL
seccompProfile:
  type: RuntimeDefault
{{- end -}}
