{{- define "injector-webhook.mutatingName" -}}
{{- printf "%s-sidecar-injector-%s" .Release.Name .Release.Namespace | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- define "injector-webhook.validatingName" -}}
{{- printf "%s-validator-%s" .Release.Name .Release.Namespace | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
clientConfig for one webhook path: (dict "ctx" . "path" "/inject" "kind" "MutatingWebhookConfiguration"
"name" <object name>). url mode when webhook.url is set (the injector runs outside the cluster),
else the injector Service. caBundle: the value when given, else the one already patched into the
live object by the injector (kept across upgrades), else empty until the injector patches it.
*/}}
{{- define "injector-webhook.clientConfig" -}}
{{- $ := .ctx -}}
{{- $w := $.Values.webhook -}}
{{- $ca := $w.caBundle -}}
{{- if not $ca -}}
{{- $live := lookup "admissionregistration.k8s.io/v1" .kind "" .name -}}
{{- if $live -}}
{{- range $live.webhooks -}}
{{- if and (not $ca) .clientConfig.caBundle }}{{ $ca = .clientConfig.caBundle }}{{ end -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- if $w.url -}}
url: {{ printf "%s%s" (trimSuffix "/" $w.url) .path | quote }}
{{- else -}}
service:
  name: {{ include "aviary-common.fullname" $ }}
  namespace: {{ $.Release.Namespace }}
  path: {{ .path | quote }}
  port: 443
{{- end }}
{{- with $ca }}
caBundle: {{ . }}
{{- end }}
{{- end -}}
