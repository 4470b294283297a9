{{- define "ringlog.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 52 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 52 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "ringlog.headless" -}}
{{- printf "%s-headless" (include "ringlog.fullname" .) -}}
{{- end -}}

{{- define "ringlog.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "ringlog.selector" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: node
{{- end -}}

{{- define "ringlog.serviceAccount" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "ringlog.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "ringlog.secretName" -}}
{{- default (printf "%s-secret" (include "ringlog.fullname" .)) .Values.cluster.existingSecret -}}
{{- end -}}

{{/* The stable DNS name of pod i, through the headless Service. */}}
{{- define "ringlog.podUrl" -}}
{{- $ := index . 0 -}}
{{- printf "http://%s-%d.%s.%s.svc.cluster.local:%d" (include "ringlog.fullname" $) (index . 1) (include "ringlog.headless" $) $.Release.Namespace (int $.Values.port) -}}
{{- end -}}

{{- define "ringlog.seeds" -}}
{{- $urls := list -}}
{{- range $i := until (int .Values.cluster.initialSize) -}}
{{- $urls = append $urls (include "ringlog.podUrl" (list $ $i)) -}}
{{- end -}}
{{- join "," $urls -}}
{{- end -}}

{{- define "ringlog.initialMembers" -}}
{{- $ids := list -}}
{{- range $i := until (int .Values.cluster.initialSize) -}}
{{- $ids = append $ids (printf "%s-%d" (include "ringlog.fullname" $) $i) -}}
{{- end -}}
{{- join "," $ids -}}
{{- end -}}

{{- define "ringlog.otelEndpoint" -}}
{{- if .Values.otel.endpoint -}}
{{- .Values.otel.endpoint -}}
{{- else if .Values.jaeger.enabled -}}
{{- printf "http://%s-jaeger:4318" (include "ringlog.fullname" .) -}}
{{- end -}}
{{- end -}}
