{{/*
reconfig.configChecksum - the checksum/config idiom done right.

SHA-256 over what the named template files render, parsed: for each ConfigMap
and Secret in them, its kind, name, data, binaryData and stringData. Comments,
labels, annotations, the chart version and formatting are not part of it, so
changing them restarts nothing. Unlike `include (print $.Template.BasePath
"/configmap.yaml") . | sha256sum`, which hashes the template's text.

Argument: a list, the root context then file names under this chart's
templates/ folder. A file may hold several documents; other kinds are ignored.

  template:
    metadata:
      annotations:
        checksum/config: {{ include "reconfig.configChecksum" (list . "configmap.yaml" "secret.yaml") | quote }}
*/}}
{{- define "reconfig.configChecksum" -}}
{{- $root := first . -}}
{{- $objects := list -}}
{{- range $file := rest . -}}
  {{- $path := printf "%s/%s" $root.Template.BasePath $file -}}
  {{- range $doc := regexSplit "(?m)^---[ \\t]*$" (include $path $root) -1 -}}
    {{- $obj := fromYaml $doc -}}
    {{- if hasKey $obj "Error" -}}
      {{- fail (printf "reconfig.configChecksum: %s does not render to YAML: %s" $path $obj.Error) -}}
    {{- end -}}
    {{- $kind := $obj.kind | default "" | toString -}}
    {{- if or (eq $kind "ConfigMap") (eq $kind "Secret") -}}
      {{- $objects = append $objects (dict
            "kind" $kind
            "name" (dig "metadata" "name" "" $obj)
            "data" ($obj.data | default dict)
            "binaryData" ($obj.binaryData | default dict)
            "stringData" ($obj.stringData | default dict)) -}}
    {{- end -}}
  {{- end -}}
{{- end -}}
{{- $objects | toJson | sha256sum -}}
{{- end -}}
