{{/*
Environment every app reads through @aviary/config (libs/config/src/common.ts). In a cluster
the admin API binds 0.0.0.0 so kubelet probes and Prometheus reach it.
*/}}
{{- define "aviary-common.commonEnv" -}}
{{- $g := .Values.global | default dict -}}
- name: AVIARY_NATS_URL
  value: {{ include "aviary-common.natsUrl" . | quote }}
- name: AVIARY_ADMIN_HOST
  value: "0.0.0.0"
- name: AVIARY_ADMIN_PORT
  value: {{ .Values.adminPort | quote }}
- name: AVIARY_DATA_DIR
  value: "/var/lib/aviary"
- name: AVIARY_LOG_LEVEL
  value: {{ .Values.logLevel | default $g.logLevel | default "info" | quote }}
- name: AVIARY_TRUST_DOMAIN
  value: {{ $g.trustDomain | default "cluster.local" | quote }}
{{- with $g.adminTokenSecret }}
{{- if .name }}
- name: AVIARY_ADMIN_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ .name | quote }}
      key: {{ .key | default "token" | quote }}
{{- end }}
{{- end }}
{{- with $g.otlpEndpoint }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ . | quote }}
{{- end }}
{{- end -}}

{{/* User-supplied extra env: a map NAME: value, rendered sorted so output is deterministic. */}}
{{- define "aviary-common.extraEnv" -}}
{{- range $k, $v := .Values.extraEnv }}
- name: {{ $k }}
  value: {{ $v | toString | quote }}
{{- end }}
{{- end -}}
