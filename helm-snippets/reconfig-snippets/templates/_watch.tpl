{{/*
reconfig watch sidecar. Values (see helm-snippets/values-watch.yaml for all
of them, with defaults):

  initContainers:      # native sidecar (Kubernetes 1.29+): the app starts once a validated config exists
    {{- include "reconfig.watch.nativeSidecar" .Values.reconfigWatch | nindent 4 }}
  containers:          # or the classic form, beside the app
    {{- include "reconfig.watch.container" .Values.reconfigWatch | nindent 4 }}

plus, in the pod spec:

  {{- if include "reconfig.watch.needsSharedPids" .Values.reconfigWatch }}
  shareProcessNamespace: true    # signal and restart modes must see the app's processes
  {{- end }}
  volumes:
    {{- include "reconfig.watch.volumes" .Values.reconfigWatch | nindent 4 }}
*/}}

{{/* The sidecar's command line, one list item per argument. */}}
{{- define "reconfig.watch.args" -}}
{{- $w := . -}}
{{- if not $w.dirs -}}
{{- fail "reconfig watch: set dirs (the mounted ConfigMap/Secret folders to watch)" -}}
{{- end -}}
{{- if and $w.signal (not (or $w.process $w.pidFile)) -}}
{{- fail "reconfig watch: signal needs process or pidFile to find the app" -}}
{{- end -}}
{{- if and $w.restart (not (or $w.process $w.pidFile)) -}}
{{- fail "reconfig watch: restart needs process or pidFile to find the app" -}}
{{- end -}}
- watch
{{- range $w.dirs }}
{{- if kindIs "map" . }}
{{- if and .configMap .secret -}}
{{- fail "reconfig watch: a dirs entry names configMap or secret, not both" -}}
{{- end }}
{{- if not .path -}}
{{- fail "reconfig watch: a dirs entry with configMap or secret needs path (its mountPath)" -}}
{{- end }}
{{- if .configMap }}
- {{ printf "--dir=configmap/%s=%s" .configMap .path | quote }}
{{- else if .secret }}
- {{ printf "--dir=secret/%s=%s" .secret .path | quote }}
{{- else }}
- {{ printf "--dir=%s" .path | quote }}
{{- end }}
{{- else }}
- {{ printf "--dir=%s" . | quote }}
{{- end }}
{{- end }}
{{- with $w.policy }}
- {{ printf "--policy=%s" . | quote }}
{{- end }}
{{- with $w.publish }}
- {{ printf "--publish=%s" . | quote }}
{{- end }}
{{- with $w.signal }}
- {{ printf "--signal=%s" . | quote }}
{{- end }}
{{- with $w.process }}
- {{ printf "--process=%s" . | quote }}
{{- end }}
{{- with $w.pidFile }}
- {{ printf "--pid-file=%s" . | quote }}
{{- end }}
{{- range (kindIs "slice" $w.webhook | ternary $w.webhook (compact (list $w.webhook))) }}
- {{ printf "--webhook=%s" . | quote }}
{{- end }}
{{- with $w.exec }}
- {{ printf "--exec=%s" . | quote }}
{{- end }}
{{- if $w.restart }}
- --restart
{{- end }}
{{- with $w.validateCmd }}
- {{ printf "--validate-cmd=%s" . | quote }}
{{- end }}
{{- range $w.schemas }}
- {{ printf "--schema=%s" . | quote }}
{{- end }}
{{- if $w.events }}
- --events
{{- end }}
{{- if $w.annotatePod }}
- --annotate-pod
{{- end }}
{{- if $w.reportDetails }}
- --report-details
{{- end }}
- {{ printf "--listen=:%v" ($w.port | default 9533) | quote }}
{{- range $w.extraArgs }}
- {{ . | quote }}
{{- end }}
{{- end -}}

{{/* The container both forms share; argument: (dict "w" VALUES "native" BOOL). */}}
{{- define "reconfig.watch.containerSpec" -}}
{{- $w := .w -}}
{{- $image := $w.image | default dict -}}
{{- $portName := $w.portName | default "watch-metrics" -}}
{{- $probes := $w.probes | default dict -}}
{{- $startup := $probes.startup | default dict -}}
{{- $liveness := $probes.liveness | default dict -}}
{{- $readiness := $probes.readiness | default dict -}}
- name: {{ $w.name | default "reconfig-watch" }}
  image: {{ printf "%s:%s" ($image.repository | default "ghcr.io/reconfig/reconfig") ($image.tag | default "0.1.0") | quote }}
  imagePullPolicy: {{ $image.pullPolicy | default "IfNotPresent" }}
  {{- if .native }}
  # A native sidecar: started before the app containers and kept running.
  # The app starts only once the startupProbe passes, i.e. once /readyz
  # reports a validated config running.
  restartPolicy: Always
  {{- end }}
  args:
    {{- include "reconfig.watch.args" $w | nindent 4 }}
  env:
    # Who "this pod" is for --events and --annotate-pod.
    - name: POD_NAME
      valueFrom:
        fieldRef:
          fieldPath: metadata.name
    - name: POD_NAMESPACE
      valueFrom:
        fieldRef:
          fieldPath: metadata.namespace
    - name: POD_UID
      valueFrom:
        fieldRef:
          fieldPath: metadata.uid
    {{- with $w.env }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  ports:
    - name: {{ $portName }}
      containerPort: {{ $w.port | default 9533 }}
      protocol: TCP
  {{- if .native }}
  startupProbe:
    httpGet:
      path: /readyz
      port: {{ $portName }}
    periodSeconds: {{ $startup.periodSeconds | default 2 }}
    failureThreshold: {{ $startup.failureThreshold | default 150 }}
  {{- end }}
  livenessProbe:
    httpGet:
      path: /healthz
      port: {{ $portName }}
    periodSeconds: {{ $liveness.periodSeconds | default 10 }}
    timeoutSeconds: {{ $liveness.timeoutSeconds | default 2 }}
    failureThreshold: {{ $liveness.failureThreshold | default 3 }}
  {{- if ne (toString $readiness.enabled) "false" }}
  # Ready once a validated config runs; a rejected or failed later edit keeps
  # it ready (the app serves its last good config): see /status for those.
  readinessProbe:
    httpGet:
      path: /readyz
      port: {{ $portName }}
    periodSeconds: {{ $readiness.periodSeconds | default 5 }}
    timeoutSeconds: {{ $readiness.timeoutSeconds | default 2 }}
    failureThreshold: {{ $readiness.failureThreshold | default 3 }}
  {{- end }}
  resources:
    {{- toYaml ($w.resources | default (dict "requests" (dict "cpu" "10m" "memory" "16Mi") "limits" (dict "memory" "64Mi"))) | nindent 4 }}
  securityContext:
    runAsNonRoot: true
    runAsUser: {{ $w.runAsUser | default 65532 }}
    runAsGroup: {{ $w.runAsGroup | default 65532 }}
    allowPrivilegeEscalation: false
    readOnlyRootFilesystem: true
    capabilities:
      # Signalling a process of the same UID needs no capability.
      drop: [ALL]
      {{- with $w.addCapabilities }}
      add:
        {{- toYaml . | nindent 8 }}
      {{- end }}
    seccompProfile:
      type: RuntimeDefault
  {{- if or $w.volumeMounts $w.publish }}
  volumeMounts:
    {{- with $w.volumeMounts }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
    {{- with $w.publish }}
    - name: {{ $w.publishVolume | default "reconfig-published" }}
      mountPath: {{ . }}
    {{- end }}
  {{- end }}
{{- end -}}

{{/* The native-sidecar form: an item for the pod's initContainers. */}}
{{- define "reconfig.watch.nativeSidecar" -}}
{{- include "reconfig.watch.containerSpec" (dict "w" . "native" true) -}}
{{- end -}}

{{/* The classic form: an item for the pod's containers. */}}
{{- define "reconfig.watch.container" -}}
{{- include "reconfig.watch.containerSpec" (dict "w" . "native" false) -}}
{{- end -}}

{{/*
"true" when the pod needs `shareProcessNamespace: true`: --signal and
--restart find and signal the app, which takes one PID namespace for the
pod (the app is then no longer PID 1; reconfig never signals PID 1).
Empty otherwise, so it works in an `if`.
*/}}
{{- define "reconfig.watch.needsSharedPids" -}}
{{- if or .signal .restart -}}true{{- end -}}
{{- end -}}

{{/*
Pod volumes the sidecar brings: the emptyDir it publishes validated config
into (when publish is set). Mount it in the app read-only at the path the app
reads, under the name in publishVolume.
*/}}
{{- define "reconfig.watch.volumes" -}}
{{- if .publish -}}
- name: {{ .publishVolume | default "reconfig-published" }}
  emptyDir:
    sizeLimit: {{ .publishSizeLimit | default "16Mi" }}
{{- end -}}
{{- end -}}
