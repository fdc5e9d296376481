{{- define "reconfig-admit.name" -}}
{{- printf "%s-reconfig-admit" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "reconfig-admit.labels" -}}
app.kubernetes.io/name: reconfig-admit
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "reconfig-admit.selector" -}}
app.kubernetes.io/name: reconfig-admit
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* The Service's DNS names, which the serving certificate must carry. */}}
{{- define "reconfig-admit.dnsNames" -}}
{{- $svc := include "reconfig-admit.name" . -}}
- {{ $svc }}
- {{ printf "%s.%s" $svc .Release.Namespace }}
- {{ printf "%s.%s.svc" $svc .Release.Namespace }}
- {{ printf "%s.%s.svc.cluster.local" $svc .Release.Namespace }}
{{- end -}}
