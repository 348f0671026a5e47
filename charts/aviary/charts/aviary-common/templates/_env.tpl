{{/*
Environment every app reads through @aviary/config (libs/platform/config/src/common.ts). The admin
API (docs, config reads and writes, injection preview) binds loopback: only a process in the pod
(or `kubectl port-forward`, which connects inside the pod's network namespace) reaches it. Kubelet
probes and Prometheus use the monitoring listener on the pod address (healthPort), which serves
GET /healthz, /readyz and /metrics and nothing else.
*/}}
{{- define "aviary-common.commonEnv" -}}
{{- $g := .Values.global | default dict -}}
- name: AVIARY_NATS_URL
  value: {{ include "aviary-common.natsUrl" . | quote }}
{{- $replicas := int (($g.nats | default dict).streamReplicas | default 1) }}
{{- if gt $replicas 1 }}
# JetStream replicas of the streams and KV buckets the app creates (a clustered NATS).
- name: AVIARY_NATS_REPLICAS
  value: {{ $replicas | quote }}
{{- end }}
{{- if include "aviary-common.natsAuth" . }}
# This app's own NATS user: its bus role is the chart's name (@aviary/events permissions.ts).
- name: AVIARY_NATS_USER
  value: {{ .Chart.Name | quote }}
- name: AVIARY_NATS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "aviary-common.natsUsersSecret" . | quote }}
      key: {{ .Chart.Name | quote }}
{{- end }}
- name: AVIARY_ADMIN_HOST
  value: "127.0.0.1"
- name: AVIARY_ADMIN_PORT
  value: {{ .Values.adminPort | quote }}
- name: AVIARY_HEALTH_HOST
  value: "0.0.0.0"
- name: AVIARY_HEALTH_PORT
  value: {{ .Values.healthPort | quote }}
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
