{{/* Cross-subchart consistency checks; rendered (and so enforced) through NOTES.txt. */}}
{{- define "aviary.checks" -}}
{{- $url := ((.Values.global | default dict).nats | default dict).url -}}
{{- if and .Values.nats.enabled $url -}}
{{- fail "global.nats.url points at an external NATS: set nats.enabled=false as well" -}}
{{- end -}}
{{- if and (not .Values.nats.enabled) (not $url) -}}
{{- fail "nats.enabled=false needs global.nats.url (an existing NATS with JetStream)" -}}
{{- end -}}
{{- $streamReplicas := int (((.Values.global | default dict).nats | default dict).streamReplicas | default 1) -}}
{{- if and .Values.nats.enabled (gt $streamReplicas (int (.Values.nats.replicaCount | default 1))) -}}
{{- fail (printf "global.nats.streamReplicas (%d) exceeds nats.replicaCount (%d): JetStream cannot place more replicas than servers" $streamReplicas (int (.Values.nats.replicaCount | default 1))) -}}
{{- end -}}
{{- if and .Values.pilot.enabled ((.Values.pilot.gatewayDeployment | default dict).enabled) (not .Values.gateway.enabled) -}}
{{- fail "pilot.gatewayDeployment.enabled deploys Gateways from the gateway subchart's pod template: set gateway.enabled=true or pilot.gatewayDeployment.enabled=false" -}}
{{- end -}}
{{- end -}}
