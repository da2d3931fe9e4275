{{/* Names and labels shared by every template. */}}
{{- define "lumen.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 40 | trimSuffix "-" -}}
{{- end -}}

{{- define "lumen.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- $name := include "lumen.name" . -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "lumen.labels" -}}
app.kubernetes.io/name: {{ include "lumen.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "lumen.selector" -}}
app.kubernetes.io/name: {{ include "lumen.name" .root }}
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

{{/* Whether the operator gives the NATS users Secret (GitOps), rather than the chart making it. */}}
{{- define "lumen.natsCredentialsGiven" -}}
{{- if .Values.nats.bundled -}}
{{ .Values.nats.credentials.existingSecret }}
{{- else -}}
{{ .Values.nats.external.existingSecret }}
{{- end -}}
{{- end -}}

{{- define "lumen.natsSecret" -}}
{{- include "lumen.natsCredentialsGiven" . | default (printf "%s-nats-users" (include "lumen.fullname" .)) -}}
{{- end -}}

{{/* The NATS users with a password, comma-separated: the control plane, the probers' one
  user (prober.credentials=shared only) and the auth callout's own (perNode only). */}}
{{- define "lumen.natsUsers" -}}
{{- $users := list "planner" "scheduler" "reporter" -}}
{{- if eq .Values.prober.credentials "shared" }}{{ $users = append $users "prober" }}{{ end -}}
{{- if eq .Values.prober.credentials "perNode" }}{{ $users = append $users "auth" }}{{ end -}}
{{- join "," $users -}}
{{- end -}}

{{/*
The passwords of the users Secret the chart makes, as JSON: the Secret's own where it
exists (lookup), otherwise new ones. Made once per render and kept in .Values, so that the
Secret and every pod's checksum see the same passwords.
*/}}
{{- define "lumen.natsGeneratedPasswords" -}}
{{- if not (hasKey .Values.nats "_generatedPasswords") -}}
{{- $existing := lookup "v1" "Secret" .Release.Namespace (include "lumen.natsSecret" .) -}}
{{- $passwords := dict -}}
{{- range $user := append (include "lumen.natsUsers" . | splitList ",") "routes" -}}
{{- $key := printf "%s-password" $user -}}
{{- if and $existing (hasKey $existing.data $key) -}}
{{- $_ := set $passwords $user (index $existing.data $key | b64dec) -}}
{{- else -}}
{{- $_ := set $passwords $user (randAlphaNum 32) -}}
{{- end -}}
{{- end -}}
{{- $_ := set .Values.nats "_generatedPasswords" $passwords -}}
{{- end -}}
{{- toJson .Values.nats._generatedPasswords -}}
{{- end -}}

{{/*
A checksum of the NATS credentials, on every pod that uses them, so that each rolls when
they change: the chart's passwords, or the operator's Secret as the cluster holds it
(lookup; empty where the chart is rendered without a cluster, as GitOps tools do) together
with nats.credentials.revision, which an operator bumps after rotating it.
*/}}
{{- define "lumen.natsCredentialsChecksum" -}}
{{- if include "lumen.natsCredentialsGiven" . -}}
{{- $secret := lookup "v1" "Secret" .Release.Namespace (include "lumen.natsSecret" .) | default dict -}}
{{- list ($secret.data | default dict) .Values.nats.credentials.revision | toJson | sha256sum -}}
{{- else -}}
{{- include "lumen.natsGeneratedPasswords" . | sha256sum -}}
{{- end -}}
{{- end -}}

{{/*
JetStream's file store limit in bytes: nats.storage.size, a Kubernetes quantity (decimal
or binary suffix, fractions allowed), less 10% headroom for compaction and metadata.
nats-server reads no binary suffixes and no fractions, so the chart converts.
*/}}
{{- define "lumen.jetstreamLimit" -}}
{{- $quantity := .Values.nats.storage.size | toString -}}
{{- $number := regexFind "^[0-9]+(\\.[0-9]+)?" $quantity -}}
{{- $unit := trimPrefix $number $quantity -}}
{{- $scale := get (dict "" 1.0 "K" 1e3 "M" 1e6 "G" 1e9 "T" 1e12 "Ki" 1024.0 "Mi" 1048576.0 "Gi" 1073741824.0 "Ti" 1099511627776.0) $unit -}}
{{- $limit := mulf (float64 $number) $scale 0.9 | floor | int64 -}}
{{- /* STREAMS_RESERVED_BYTES in libs/messaging (a chart test checks they agree): JetStream
  refuses a stream whose byte limit the store cannot reserve. */}}
{{- $reserved := 7784628224 -}}
{{- if lt $limit $reserved }}
{{- fail (printf "nats.storage.size=%s leaves JetStream %d bytes (90%%), less than the %d bytes (7.25 GiB) Lumen's streams reserve: use 9Gi or more" $quantity $limit $reserved) }}
{{- end -}}
{{- $limit -}}
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
# Each stream on as many servers as there are (the scheduler makes them).
- name: NATS_STREAM_REPLICAS
  value: {{ ternary .root.Values.nats.replicas .root.Values.nats.external.streamReplicas .root.Values.nats.bundled | quote }}
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

{{/* A component's values: .Values.planner, .Values.nats, … */}}
{{- define "lumen.componentValues" -}}
{{- toJson (index .root.Values .component) -}}
{{- end -}}

{{/*
A pod template's annotations beyond its own: the NATS credentials' checksum, on every pod
that reads them (a prober only with the one shared user), then the component's
podAnnotations.
*/}}
{{- define "lumen.podAnnotations" -}}
{{- $values := include "lumen.componentValues" . | fromJson -}}
{{- if or (ne .component "prober") (eq .root.Values.prober.credentials "shared") }}
checksum/nats-credentials: {{ include "lumen.natsCredentialsChecksum" .root }}
{{- end }}
{{- with $values.podAnnotations }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* image.pullSecrets for every pod; the NATS pods add nats.pullSecrets. */}}
{{- define "lumen.imagePullSecrets" -}}
{{- $secrets := .root.Values.image.pullSecrets -}}
{{- if eq .component "nats" }}{{ $secrets = concat $secrets .root.Values.nats.pullSecrets }}{{ end -}}
{{- with $secrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/*
Where a component's pods may run: its nodeSelector, tolerations, affinity,
topologySpreadConstraints and priorityClassName. Without an affinity of their own, the
NATS servers prefer nodes apart (a node lost takes one server, not the quorum), and the
prober keeps off control-plane nodes unless prober.onControlPlaneNodes; the prober's
priority class is prober.priorityClass.
*/}}
{{- define "lumen.podScheduling" -}}
{{- $values := include "lumen.componentValues" . | fromJson -}}
{{- with $values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- if $values.affinity }}
affinity:
  {{- toYaml $values.affinity | nindent 2 }}
{{- else if eq .component "nats" }}
affinity:
  podAntiAffinity:
    preferredDuringSchedulingIgnoredDuringExecution:
      - weight: 100
        podAffinityTerm:
          topologyKey: kubernetes.io/hostname
          labelSelector:
            matchLabels:
              {{- include "lumen.selector" . | nindent 14 }}
{{- else if and (eq .component "prober") (not .root.Values.prober.onControlPlaneNodes) }}
# Not beside etcd and the API server's keys unless asked (prober.onControlPlaneNodes).
affinity:
  nodeAffinity:
    requiredDuringSchedulingIgnoredDuringExecution:
      nodeSelectorTerms:
        - matchExpressions:
            - { key: node-role.kubernetes.io/control-plane, operator: DoesNotExist }
            - { key: node-role.kubernetes.io/master, operator: DoesNotExist }
{{- end }}
{{- with $values.topologySpreadConstraints }}
topologySpreadConstraints:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- if eq .component "prober" }}
priorityClassName: {{ .root.Values.prober.priorityClass.name }}
{{- else if $values.priorityClassName }}
priorityClassName: {{ $values.priorityClassName }}
{{- end }}
{{- end -}}

{{/* A component's extra environment variables (extraEnv), after the chart's own. */}}
{{- define "lumen.extraEnv" -}}
{{- $values := include "lumen.componentValues" . | fromJson -}}
{{- with $values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/*
A PodDisruptionBudget for a component of several replicas: a drain takes one at a time
(podDisruptionBudget.maxUnavailable). One replica gets none: it would block every drain.
*/}}
{{- define "lumen.podDisruptionBudget" -}}
{{- $values := include "lumen.componentValues" . | fromJson -}}
{{- if and $values.podDisruptionBudget.enabled (gt (int $values.replicas) 1) }}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ include "lumen.fullname" .root }}-{{ .component }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "lumen.labels" . | nindent 4 }}
spec:
  maxUnavailable: {{ $values.podDisruptionBudget.maxUnavailable }}
  selector:
    matchLabels:
      {{- include "lumen.selector" . | nindent 6 }}
{{- end }}
{{- end -}}

{{/* The ports of the NATS servers, comma-separated: 4222, or each port of nats.external.url. */}}
{{- define "lumen.natsPorts" -}}
{{- if .Values.nats.bundled -}}
4222
{{- else -}}
{{- $ports := list -}}
{{- range $url := splitList "," .Values.nats.external.url -}}
{{- $port := regexFind "[0-9]+$" (regexFind ":[0-9]+/?$" (trim $url) | trimSuffix "/") | default "4222" -}}
{{- $ports = append $ports $port -}}
{{- end -}}
{{- $ports | uniq | join "," -}}
{{- end -}}
{{- end -}}
