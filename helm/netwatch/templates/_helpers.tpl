{{/* Chart name, or nameOverride. */}}
{{- define "netwatch.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Full name of the release's objects: <release>-<name>, or <release> when it already holds the name. */}}
{{- define "netwatch.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := include "netwatch.name" . -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "netwatch.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels of every object. */}}
{{- define "netwatch.labels" -}}
helm.sh/chart: {{ include "netwatch.chart" . }}
{{ include "netwatch.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: agent
{{- end -}}

{{/* Labels that select the agent pods; never change them in an upgrade (DaemonSet selectors are immutable). */}}
{{- define "netwatch.selectorLabels" -}}
app.kubernetes.io/name: {{ include "netwatch.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "netwatch.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "netwatch.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "netwatch.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}

{{/* A read-only host path mount; recursiveReadOnly when the cluster supports it (1.30+). */}}
{{- define "netwatch.readOnlyMount" -}}
- name: {{ .name }}
  mountPath: {{ .path }}
  readOnly: true
  {{- with .root.Values.hostPaths.recursiveReadOnly }}
  recursiveReadOnly: {{ . }}
  {{- end }}
{{- end -}}
