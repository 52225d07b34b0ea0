{{- define "zhida.labels" -}}
app.kubernetes.io/part-of: zhida
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end -}}
