{{/* Names and labels shared by every template. */}}
{{- define "lumen.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "lumen.labels" -}}
app.kubernetes.io/name: lumen
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "lumen.selector" -}}
app.kubernetes.io/name: lumen
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "lumen.image" -}}
{{ .Values.image.repository }}:{{ default .Chart.AppVersion .Values.image.tag }}
{{- end -}}

{{- define "lumen.natsUrl" -}}
{{- if .Values.nats.bundled -}}
{{ ternary "tls" "nats" .Values.nats.tls.enabled }}://{{ include "lumen.fullname" . }}-nats:4222
{{- else -}}
{{ .Values.nats.external.url }}
{{- end -}}
{{- end -}}

{{- define "lumen.natsSecret" -}}
{{- if and (not .Values.nats.bundled) .Values.nats.external.existingSecret -}}
{{ .Values.nats.external.existingSecret }}
{{- else -}}
{{ include "lumen.fullname" . }}-nats-users
{{- end -}}
{{- end -}}

{{/* The Secret and key holding the CA of the NATS server's certificate, if one is set. */}}
{{- define "lumen.natsCa" -}}
{{- if and .Values.nats.bundled .Values.nats.tls.enabled -}}
{{ .Values.nats.tls.secretName }}:ca.crt
{{- else if and (not .Values.nats.bundled) .Values.nats.external.caSecret -}}
{{ .Values.nats.external.caSecret }}:{{ .Values.nats.external.caKey | default "ca.crt" }}
{{- end -}}
{{- end -}}

{{/* A service's volume mount and volume for the NATS CA (nothing without one). */}}
{{- define "lumen.natsCaMount" -}}
{{- if include "lumen.natsCa" . }}
- { name: nats-ca, mountPath: /etc/lumen/nats-ca, readOnly: true }
{{- end }}
{{- end -}}

{{- define "lumen.natsCaVolume" -}}
{{- $ca := include "lumen.natsCa" . -}}
{{- if $ca }}
- name: nats-ca
  secret:
    secretName: {{ index (splitList ":" $ca) 0 }}
    items:
      - { key: {{ index (splitList ":" $ca) 1 }}, path: ca.crt }
{{- end }}
{{- end -}}

{{/* The environment every service shares: NATS with its own user, logs, its pod. */}}
{{- define "lumen.commonEnv" -}}
- name: NATS_URL
  value: {{ include "lumen.natsUrl" .root | quote }}
{{- /* A prober with its node's own credentials has no password (prober.yaml). */}}
{{- if or (ne .component "prober") (eq .root.Values.prober.credentials "shared") }}
- name: NATS_USER
  valueFrom:
    secretKeyRef:
      name: {{ include "lumen.natsSecret" .root }}
      key: {{ .component }}-user
- name: NATS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "lumen.natsSecret" .root }}
      key: {{ .component }}-password
{{- end }}
{{- if include "lumen.natsCa" .root }}
- name: NATS_CA_FILE
  value: /etc/lumen/nats-ca/ca.crt
{{- end }}
- name: LOG_LEVEL
  value: {{ .root.Values.logLevel | quote }}
- name: POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: POD_NAMESPACE
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
{{- end -}}

{{- define "lumen.leaderEnv" -}}
- name: LEADER_ELECTION
  value: {{ .root.Values.leaderElection.enabled | quote }}
- name: LEASE_NAME
  value: {{ printf "%s-%s" (include "lumen.fullname" .root) .component | quote }}
- name: LEASE_DURATION_SECONDS
  value: {{ .root.Values.leaderElection.leaseDurationSeconds | quote }}
{{- end -}}

{{/* A service container's hardening: non-root, nothing writable but /tmp, no capabilities. */}}
{{- define "lumen.restrictedSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "lumen.probes" -}}
livenessProbe:
  httpGet: { path: /healthz, port: http }
  periodSeconds: 10
readinessProbe:
  httpGet: { path: /readyz, port: http }
  periodSeconds: 5
{{- end -}}

{{/*
"Anywhere" as NetworkPolicy peers: every IPv4 and IPv6 address except
networkPolicies.deniedEgressCidrs (cloud metadata services, link-local), each family's
exceptions under its own block as the API requires.
*/}}
{{- define "lumen.anywhere" -}}
{{- $v4 := list -}}
{{- $v6 := list -}}
{{- range .Values.networkPolicies.deniedEgressCidrs -}}
{{- if contains ":" . -}}{{- $v6 = append $v6 . -}}{{- else -}}{{- $v4 = append $v4 . -}}{{- end -}}
{{- end -}}
- ipBlock:
    cidr: 0.0.0.0/0
    {{- with $v4 }}
    except: {{ toJson . }}
    {{- end }}
- ipBlock:
    cidr: ::/0
    {{- with $v6 }}
    except: {{ toJson . }}
    {{- end }}
{{- end -}}

{{/* The namespace of synthetic sources: their own, never the release's. */}}
{{- define "lumen.syntheticNamespace" -}}
{{- .Values.syntheticSources.namespace | default (printf "%s-synthetic" .Release.Namespace) -}}
{{- end -}}
