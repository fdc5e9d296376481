{{/*
reconfig.prune - a CronJob that runs `reconfig prune` in one namespace, with a
ServiceAccount, Role and RoleBinding granting exactly what it needs: list and
delete ConfigMaps and Secrets (the versions), and list what may name them
(ReplicaSets, ControllerRevisions, Deployments, StatefulSets, DaemonSets, Jobs,
CronJobs, Pods, PodTemplates, ReplicationControllers, Argo Rollouts, OpenKruise
and Knative workloads). Nothing else: no get, no watch, no write but delete.

  {{- include "reconfig.prune" (dict "name" "shop-reconfig-prune" "namespace" .Release.Namespace) }}

Put it in a template file of its own. Optional keys, with defaults:
  schedule      "17 * * * *"      when to run (cron syntax)
  keepLast      3                  newest versions of each name always kept
  minAge        "10m"              never delete a version younger than this
  selector      ""                 only versions matching this label selector
  dryRun        false              only print what would be deleted
  image         {repository: reconfig, tag: latest, pullPolicy: IfNotPresent}
  labels        {}                 added to every object
  resources     requests 10m/32Mi, limit 128Mi
  createServiceAccount  true
*/}}
{{- define "reconfig.prune" -}}
{{- $name := required "reconfig.prune: name is required" .name -}}
{{- $ns := required "reconfig.prune: namespace is required" .namespace -}}
{{- $image := .image | default dict -}}
{{- $keepLast := toString (hasKey . "keepLast" | ternary .keepLast 3) -}}
{{- if not (regexMatch "^[0-9]+$" $keepLast) -}}
{{- fail (printf "reconfig.prune: keepLast must be a whole number, not %s" $keepLast) -}}
{{- end -}}
{{- if ne (toString .createServiceAccount) "false" }}
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ $name }}
  namespace: {{ $ns }}
  {{- with .labels }}
  labels:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: {{ $name }}
  namespace: {{ $ns }}
  {{- with .labels }}
  labels:
    {{- toYaml . | nindent 4 }}
  {{- end }}
rules:
  # The versions: listed (metadata only) and deleted when nothing uses them.
  - apiGroups: [""]
    resources: [configmaps, secrets]
    verbs: [list, delete]
  # What may name a version: one list of each kind, no reads of single objects.
  - apiGroups: [""]
    resources: [pods, podtemplates, replicationcontrollers]
    verbs: [list]
  - apiGroups: [apps]
    resources: [replicasets, controllerrevisions, deployments, statefulsets, daemonsets]
    verbs: [list]
  - apiGroups: [batch]
    resources: [jobs, cronjobs]
    verbs: [list]
  - apiGroups: [argoproj.io]
    resources: [rollouts]
    verbs: [list]
  - apiGroups: [apps.kruise.io]
    resources: [clonesets, statefulsets, daemonsets, broadcastjobs, advancedcronjobs, uniteddeployments]
    verbs: [list]
  - apiGroups: [serving.knative.dev]
    resources: [services]
    verbs: [list]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: {{ $name }}
  namespace: {{ $ns }}
  {{- with .labels }}
  labels:
    {{- toYaml . | nindent 4 }}
  {{- end }}
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: Role
  name: {{ $name }}
subjects:
  - kind: ServiceAccount
    name: {{ $name }}
    namespace: {{ $ns }}
---
apiVersion: batch/v1
kind: CronJob
metadata:
  name: {{ $name }}
  namespace: {{ $ns }}
  {{- with .labels }}
  labels:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  schedule: {{ .schedule | default "17 * * * *" | quote }}
  concurrencyPolicy: Forbid
  successfulJobsHistoryLimit: 1
  failedJobsHistoryLimit: 3
  jobTemplate:
    spec:
      backoffLimit: 1
      activeDeadlineSeconds: 600
      template:
        {{- with .labels }}
        metadata:
          labels:
            {{- toYaml . | nindent 12 }}
        {{- end }}
        spec:
          serviceAccountName: {{ $name }}
          restartPolicy: Never
          containers:
            - name: reconfig-prune
              image: {{ printf "%s:%s" ($image.repository | default "reconfig") ($image.tag | default "latest") | quote }}
              imagePullPolicy: {{ $image.pullPolicy | default "IfNotPresent" }}
              args:
                - prune
                - {{ printf "--namespace=%s" $ns | quote }}
                - {{ printf "--keep-last=%s" $keepLast | quote }}
                - {{ printf "--min-age=%s" (.minAge | default "10m") | quote }}
                {{- with .selector }}
                - {{ printf "--selector=%s" . | quote }}
                {{- end }}
                {{- if .dryRun }}
                - --dry-run
                {{- end }}
              resources:
                {{- toYaml (.resources | default (dict "requests" (dict "cpu" "10m" "memory" "32Mi") "limits" (dict "memory" "128Mi"))) | nindent 16 }}
              securityContext:
                runAsNonRoot: true
                runAsUser: 65532
                runAsGroup: 65532
                allowPrivilegeEscalation: false
                readOnlyRootFilesystem: true
                capabilities:
                  drop: [ALL]
                seccompProfile:
                  type: RuntimeDefault
{{- end -}}
