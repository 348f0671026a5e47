{{/* ClusterIP Service for the app's ports and, with service.exposeMonitoring, the monitoring port (values: ports[].name/port/containerPort). */}}
{{- define "aviary-common.service" -}}
{{- $v := .Values -}}
apiVersion: v1
kind: Service
metadata:
  name: {{ include "aviary-common.fullname" . }}
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "aviary-common.labels" . | nindent 4 }}
  {{- with $v.service.annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  type: {{ $v.service.type }}
  selector:
    {{- include "aviary-common.selectorLabels" . | nindent 4 }}
  {{- with $v.service.externalTrafficPolicy }}
  externalTrafficPolicy: {{ . }}
  {{- end }}
  ports:
    {{- if $v.service.exposeMonitoring }}
    - name: http-monitoring
      port: {{ $v.healthPort }}
      targetPort: http-monitoring
      protocol: TCP
    {{- end }}
    {{- range $v.ports }}
    {{- if ne (toString .expose) "false" }}
    - name: {{ .name }}
      port: {{ .port }}
      targetPort: {{ .name }}
      protocol: {{ .protocol | default "TCP" }}
      {{- with .appProtocol }}
      appProtocol: {{ . }}
      {{- end }}
    {{- end }}
    {{- end }}
{{- end -}}

{{- define "aviary-common.serviceAccount" -}}
{{- if .Values.serviceAccount.create -}}
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ include "aviary-common.serviceAccountName" . }}
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "aviary-common.labels" . | nindent 4 }}
  {{- with .Values.serviceAccount.annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
automountServiceAccountToken: {{ .Values.serviceAccount.automount }}
{{- end -}}
{{- end -}}

{{/*
PodDisruptionBudget: minAvailable when set, else maxUnavailable. The default
maxUnavailable: 1 never blocks a node drain of a single replica.
*/}}
{{- define "aviary-common.pdb" -}}
{{- $p := .Values.podDisruptionBudget -}}
{{- if $p.enabled -}}
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ include "aviary-common.fullname" . }}
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "aviary-common.labels" . | nindent 4 }}
spec:
  {{- if not (kindIs "invalid" $p.minAvailable) }}
  minAvailable: {{ $p.minAvailable }}
  {{- else }}
  maxUnavailable: {{ $p.maxUnavailable | default 1 }}
  {{- end }}
  unhealthyPodEvictionPolicy: AlwaysAllow
  selector:
    matchLabels:
      {{- include "aviary-common.selectorLabels" . | nindent 6 }}
{{- end -}}
{{- end -}}
