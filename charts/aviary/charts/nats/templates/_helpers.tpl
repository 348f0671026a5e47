{{- define "nats.fullname" -}}
{{- printf "%s-nats" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- define "nats.labels" -}}
{{ include "nats.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: messaging
app.kubernetes.io/part-of: aviary
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}
{{- define "nats.selectorLabels" -}}
app.kubernetes.io/name: nats
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}
{{/* Per-app NATS users (@aviary/events permissions.ts): on unless global.nats.auth.enabled=false. */}}
{{- define "nats.authEnabled" -}}
{{- $a := ((.Values.global | default dict).nats | default dict).auth | default dict -}}
{{- if ne (toString $a.enabled) "false" }}true{{ end -}}
{{- end -}}
{{- define "nats.usersSecret" -}}
{{- printf "%s-users" (include "nats.fullname" .) -}}
{{- end -}}
{{/* The bus roles, as in @aviary/events busRoles (tools/nats/authorization.spec.ts checks it). */}}
{{- define "nats.roles" -}}
pilot citadel injector-webhook telemetry-collector gateway observer
{{- end -}}
