{{- define "gantry.fullname" -}}
{{- printf "%s-gantry" .Release.Name | trunc 56 | trimSuffix "-" -}}
{{- end -}}

{{- define "gantry.labels" -}}
app.kubernetes.io/name: gantry
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "gantry.publicURL" -}}
{{- default (printf "http://%s-server:1983" (include "gantry.fullname" .)) .Values.server.publicURL -}}
{{- end -}}
