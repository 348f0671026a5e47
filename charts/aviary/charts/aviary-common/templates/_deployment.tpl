{{/*
The Deployment of one Aviary app. Call with
  (dict "ctx" . "env" <yaml list string> "volumes" <yaml list string> "volumeMounts" <yaml list string>
        "annotations" <yaml map string>)
Values contract (each subchart's values.yaml): replicaCount, image, adminPort, healthPort, ports, resources,
securityContext, serviceAccount, podAnnotations, podLabels (and workloadLabels, which podLabels
override), nodeSelector, tolerations, affinity (wins over podAntiAffinity), podAntiAffinity,
topologySpreadConstraints, priorityClassName, extraEnv, probes.
*/}}
{{- define "aviary-common.deployment" -}}
{{- $ := .ctx -}}
{{- $v := $.Values -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "aviary-common.fullname" $ }}
  namespace: {{ $.Release.Namespace }}
  labels:
    {{- include "aviary-common.labels" $ | nindent 4 }}
spec:
  replicas: {{ $v.replicaCount }}
  revisionHistoryLimit: 5
  selector:
    matchLabels:
      {{- include "aviary-common.selectorLabels" $ | nindent 6 }}
  strategy:
    type: RollingUpdate
    rollingUpdate:
      maxSurge: 1
      maxUnavailable: 0
  template:
    metadata:
      labels:
        {{- include "aviary-common.labels" $ | nindent 8 }}
        {{- with (merge (dict) ($v.podLabels | default dict) ($v.workloadLabels | default dict)) }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      annotations:
        sidecar.istio.io/inject: "false"
        prometheus.io/scrape: "true"
        prometheus.io/port: {{ $v.healthPort | quote }}
        prometheus.io/path: /metrics
        {{- with .annotations }}
        {{- . | nindent 8 }}
        {{- end }}
        {{- with $v.podAnnotations }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    spec:
      serviceAccountName: {{ include "aviary-common.serviceAccountName" $ }}
      automountServiceAccountToken: {{ $v.serviceAccount.automount }}
      enableServiceLinks: false
      {{- with $v.priorityClassName }}
      priorityClassName: {{ . }}
      {{- end }}
      {{- with ($v.global | default dict).imagePullSecrets }}
      imagePullSecrets:
        {{- range . }}
        - name: {{ . }}
        {{- end }}
      {{- end }}
      securityContext:
        {{- include "aviary-common.podSecurityContext" $ | nindent 8 }}
      terminationGracePeriodSeconds: {{ $v.terminationGracePeriodSeconds }}
      containers:
        - name: {{ $.Chart.Name }}
          image: {{ include "aviary-common.image" $ | quote }}
          imagePullPolicy: {{ $v.image.pullPolicy }}
          {{- with $v.args }}
          args:
            {{- toYaml . | nindent 12 }}
          {{- end }}
          ports:
            # The admin API listens on 127.0.0.1:adminPort (not declared: nothing outside the pod reaches it).
            - name: http-monitoring
              containerPort: {{ $v.healthPort }}
              protocol: TCP
            {{- range $v.ports }}
            - name: {{ .name }}
              containerPort: {{ .containerPort | default .port }}
              protocol: {{ .protocol | default "TCP" }}
            {{- end }}
          env:
            {{- include "aviary-common.commonEnv" $ | nindent 12 }}
            {{- with .env }}
            {{- . | nindent 12 }}
            {{- end }}
            {{- with (include "aviary-common.extraEnv" $ | trim) }}
            {{- . | nindent 12 }}
            {{- end }}
          startupProbe:
            httpGet:
              path: /healthz
              port: http-monitoring
            periodSeconds: 2
            failureThreshold: {{ $v.probes.startupFailureThreshold }}
          livenessProbe:
            httpGet:
              path: /healthz
              port: http-monitoring
            periodSeconds: 10
            timeoutSeconds: 2
            failureThreshold: 3
          readinessProbe:
            httpGet:
              path: /readyz
              port: http-monitoring
            periodSeconds: 5
            timeoutSeconds: 2
            failureThreshold: 3
          resources:
            {{- toYaml $v.resources | nindent 12 }}
          securityContext:
            {{- include "aviary-common.containerSecurityContext" $ | nindent 12 }}
          volumeMounts:
            - name: data
              mountPath: /var/lib/aviary
            - name: tmp
              mountPath: /tmp
            {{- with .volumeMounts }}
            {{- . | nindent 12 }}
            {{- end }}
      volumes:
        - name: data
          emptyDir: {}
        - name: tmp
          emptyDir:
            medium: Memory
            sizeLimit: 64Mi
        {{- with .volumes }}
        {{- . | nindent 8 }}
        {{- end }}
      {{- with $v.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- if $v.affinity }}
      affinity:
        {{- toYaml $v.affinity | nindent 8 }}
      {{- else if $v.podAntiAffinity }}
      affinity:
        {{- include "aviary-common.podAntiAffinity" (dict "mode" $v.podAntiAffinity "labels" (include "aviary-common.selectorLabels" $)) | nindent 8 }}
      {{- end }}
      {{- with $v.topologySpreadConstraints }}
      topologySpreadConstraints:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $v.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
{{- end -}}


{{/*
Spreads a workload's replicas over nodes: (dict "mode" "soft"|"hard" "labels" <selector labels
yaml>). soft: preferred (replicas still schedule on one node when there is only one); hard:
required (a replica stays Pending rather than share a node with another).
*/}}
{{- define "aviary-common.podAntiAffinity" -}}
podAntiAffinity:
  {{- if eq .mode "hard" }}
  requiredDuringSchedulingIgnoredDuringExecution:
    - topologyKey: kubernetes.io/hostname
      labelSelector:
        matchLabels:
          {{- .labels | trim | nindent 10 }}
  {{- else }}
  preferredDuringSchedulingIgnoredDuringExecution:
    - weight: 100
      podAffinityTerm:
        topologyKey: kubernetes.io/hostname
        labelSelector:
          matchLabels:
            {{- .labels | trim | nindent 12 }}
  {{- end }}
{{- end -}}
