{{/* Name of the chart, shortened to what a label value allows. */}}
{{- define "metal-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Base name of the release's objects: the release name, with the chart name appended unless
the release name already contains it.
*/}}
{{- define "metal-operator.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "metal-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels of every object. */}}
{{- define "metal-operator.labels" -}}
helm.sh/chart: {{ include "metal-operator.chart" . }}
{{ include "metal-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: metal-operator
{{- end }}

{{/* Labels that select the manager's pods. */}}
{{- define "metal-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "metal-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "metal-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "metal-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "metal-operator.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}

{{- define "metal-operator.bootTokenSecretName" -}}
{{- default (printf "%s-boot-token-key" (include "metal-operator.fullname" .)) .Values.bootServer.tokenKey.existingSecret }}
{{- end }}

{{/* Where servers reach the boot server. */}}
{{- define "metal-operator.bootExternalURL" -}}
{{- if .Values.bootServer.externalURL }}
{{- .Values.bootServer.externalURL }}
{{- else }}
{{- $scheme := ternary "https" "http" (ne .Values.bootServer.tls.secretName "") }}
{{- printf "%s://%s-boot-server.%s.svc:%v" $scheme (include "metal-operator.fullname" .) .Release.Namespace .Values.bootServer.service.port }}
{{- end }}
{{- end }}
