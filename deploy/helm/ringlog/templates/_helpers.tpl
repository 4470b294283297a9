{{- define "ringlog.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Short enough that "<fullname>-headless" and pod names stay within DNS label limits. */}}
{{- define "ringlog.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "ringlog.headless" -}}
{{- printf "%s-headless" (include "ringlog.fullname" .) }}
{{- end }}

{{- define "ringlog.commonLabels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "ringlog.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "ringlog.labels" -}}
{{ include "ringlog.commonLabels" . }}
app.kubernetes.io/component: node
{{- end }}

{{- define "ringlog.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ringlog.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: node
{{- end }}

{{- define "ringlog.jaegerSelectorLabels" -}}
app.kubernetes.io/name: {{ include "ringlog.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: jaeger
{{- end }}

{{- define "ringlog.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "ringlog.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "ringlog.secretName" -}}
{{- default (include "ringlog.fullname" .) .Values.cluster.existingSecret }}
{{- end }}

{{/* The URL a pod is reached at; the same string is its advertised URL and its entry in every seed list, so a node recognises itself among the seeds. */}}
{{- define "ringlog.podUrl" -}}
{{- printf "http://%s.%s.%s.svc.%s:%d" .pod (include "ringlog.headless" .root) .root.Release.Namespace .root.Values.clusterDomain (int .root.Values.port) }}
{{- end }}

{{- define "ringlog.seeds" -}}
{{- $urls := list }}
{{- range $i := until (int .Values.replicaCount) }}
{{- $urls = append $urls (include "ringlog.podUrl" (dict "root" $ "pod" (printf "%s-%d" (include "ringlog.fullname" $) $i))) }}
{{- end }}
{{- join "," $urls }}
{{- end }}

{{/*
The node ids that claim ring epoch 1. A node with an empty volume claims the ring from this list,
so it must not change once the cluster exists: an explicit count wins, then the list already in
the release's ConfigMap, then replicaCount at the first install.
*/}}
{{- define "ringlog.initialMembers" -}}
{{- $count := int .Values.cluster.initialMembers }}
{{- if gt $count 0 }}
{{- $ids := list }}
{{- range $i := until $count }}
{{- $ids = append $ids (printf "%s-%d" (include "ringlog.fullname" $) $i) }}
{{- end }}
{{- join "," $ids }}
{{- else }}
{{- $existing := (lookup "v1" "ConfigMap" .Release.Namespace (include "ringlog.fullname" .)) | default dict }}
{{- $data := (get $existing "data") | default dict }}
{{- if hasKey $data "RINGLOG_INITIAL_MEMBERS" }}
{{- get $data "RINGLOG_INITIAL_MEMBERS" }}
{{- else }}
{{- $ids := list }}
{{- range $i := until (int .Values.replicaCount) }}
{{- $ids = append $ids (printf "%s-%d" (include "ringlog.fullname" $) $i) }}
{{- end }}
{{- join "," $ids }}
{{- end }}
{{- end }}
{{- end }}

{{- define "ringlog.otlpEndpoint" -}}
{{- if .Values.otlp.endpoint }}
{{- .Values.otlp.endpoint }}
{{- else if .Values.jaeger.enabled }}
{{- printf "http://%s-jaeger.%s.svc.%s:4318" (include "ringlog.fullname" .) .Release.Namespace .Values.clusterDomain }}
{{- end }}
{{- end }}

{{/* N − W, or the explicit value; never 0, since a budget of 0 blocks every drain. */}}
{{- define "ringlog.maxUnavailable" -}}
{{- if ne (toString .Values.podDisruptionBudget.maxUnavailable) "" }}
{{- .Values.podDisruptionBudget.maxUnavailable }}
{{- else }}
{{- max 1 (sub (int .Values.settings.replicas) (int .Values.settings.defaultW)) }}
{{- end }}
{{- end }}

{{/* A setting's value as the text its environment variable holds; whole numbers without an exponent. */}}
{{- define "ringlog.settingValue" -}}
{{- if and (kindIs "float64" .) (eq (float64 (int64 .)) .) }}
{{- int64 . }}
{{- else }}
{{- toString . }}
{{- end }}
{{- end }}

{{- define "ringlog.validate" -}}
{{- $managed := list "nodeId" "host" "port" "dataDir" "seeds" "initialMembers" "advertiseUrl" "clusterSecret" "apiToken" }}
{{- range $key, $_ := .Values.settings }}
{{- if has $key $managed }}
{{- fail (printf "settings.%s is set by the chart; see values.yaml" $key) }}
{{- end }}
{{- end }}
{{- $n := int .Values.settings.replicas }}
{{- if or (gt (int .Values.settings.defaultW) $n) (gt (int .Values.settings.defaultR) $n) }}
{{- fail "settings.defaultR and settings.defaultW cannot exceed settings.replicas (N)" }}
{{- end }}
{{- if lt (int .Values.replicaCount) 1 }}
{{- fail "replicaCount must be at least 1" }}
{{- end }}
{{- end }}
