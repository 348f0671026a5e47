{{/*
Names and labels. Contract: every object of an app is named "<release>-<app>" (63 chars max),
selected by app.kubernetes.io/{name,instance}; cluster-scoped objects add "-<namespace>" so two
releases in different namespaces never collide.
*/}}
{{- define "aviary-common.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "aviary-common.clusterName" -}}
{{- printf "%s-%s" (include "aviary-common.fullname" .) .Release.Namespace | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Name of a sibling app's Service: (dict "ctx" . "app" "pilot"). */}}
{{- define "aviary-common.siblingName" -}}
{{- printf "%s-%s" .ctx.Release.Name .app | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "aviary-common.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "aviary-common.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "aviary-common.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "aviary-common.labels" -}}
{{ include "aviary-common.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: {{ .Values.component | default .Chart.Name }}
app.kubernetes.io/part-of: aviary
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end -}}

{{/* image: global.image.registry + image.repository : image.tag | global.image.tag | appVersion */}}
{{- define "aviary-common.image" -}}
{{- $g := (.Values.global | default dict).image | default dict -}}
{{- $repo := .Values.image.repository -}}
{{- with $g.registry }}{{ $repo = printf "%s/%s" . $repo }}{{ end -}}
{{- $tag := .Values.image.tag | default $g.tag | default .Chart.AppVersion -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" $repo .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" $repo $tag -}}
{{- end -}}
{{- end -}}

{{/*
NATS URL every app connects to: global.nats.url when set (external NATS, with nats.enabled=false),
else the bundled nats subchart's Service. Siblings cannot read each other's values, so the
external URL lives under global.
*/}}
{{- define "aviary-common.natsUrl" -}}
{{- $n := (.Values.global | default dict).nats | default dict -}}
{{- if $n.url -}}
{{- $n.url -}}
{{- else -}}
{{- printf "nats://%s.%s.svc:4222" (include "aviary-common.siblingName" (dict "ctx" . "app" "nats")) .Release.Namespace -}}
{{- end -}}
{{- end -}}

{{/* NATS per-app users are on for the bundled NATS unless global.nats.auth.enabled=false; the
  passwords are in the nats subchart's Secret (<release>-nats-users), one key per bus role. */}}
{{- define "aviary-common.natsAuth" -}}
{{- $n := (.Values.global | default dict).nats | default dict -}}
{{- $a := $n.auth | default dict -}}
{{- if and (not $n.url) (ne (toString $a.enabled) "false") }}true{{ end -}}
{{- end -}}
{{- define "aviary-common.natsUsersSecret" -}}
{{- printf "%s-users" (include "aviary-common.siblingName" (dict "ctx" . "app" "nats")) -}}
{{- end -}}
