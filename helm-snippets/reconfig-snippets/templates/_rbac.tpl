{{/*
reconfig.watch.rbac - ServiceAccount, Role and RoleBinding for the sidecar's
optional Kubernetes API features: `--events` (Events on its own pod) and
`--annotate-pod` (reconfig/config-hash and -status annotations on it).

  {{- include "reconfig.watch.rbac" (dict "name" "shop-reconfig" "namespace" .Release.Namespace) }}

Put it in a template file of its own and set the pod's serviceAccountName to
the same name. Optional keys: labels (a dict), createServiceAccount (default true),
restrictToOwnPod (default false; see below), labelsOf (a dict with configMaps and
secrets, lists of names: the objects whose labels the sidecar reads when its
--policy has rules selecting by label; `get` on a Secret reads its values too,
which the pod mounts anyway).

A Role cannot name "its own pod": pod names are generated, so `patch pods`
covers every pod in the namespace. restrictToOwnPod adds a
ValidatingAdmissionPolicy (Kubernetes 1.30+, needs rights to create
cluster-scoped policies) that lets this ServiceAccount change only the pod
its token is bound to, and only that pod's metadata.
*/}}
{{- define "reconfig.watch.rbac" -}}
{{- $name := required "reconfig.watch.rbac: name is required" .name -}}
{{- $ns := required "reconfig.watch.rbac: namespace is required" .namespace -}}
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
  # --events: events.k8s.io/v1 Events, and `patch` to count repeats in an Event's series.
  - apiGroups: [events.k8s.io]
    resources: [events]
    verbs: [create, patch]
  # Its own pod: read its UID (when POD_UID is not set), patch its annotations.
  - apiGroups: [""]
    resources: [pods]
    verbs: [get, patch]
  {{- with .labelsOf }}
  {{- with .configMaps }}
  # --policy rules selecting by label: these objects' labels (read as metadata only).
  - apiGroups: [""]
    resources: [configmaps]
    resourceNames: {{ toJson . }}
    verbs: [get]
  {{- end }}
  {{- with .secrets }}
  - apiGroups: [""]
    resources: [secrets]
    resourceNames: {{ toJson . }}
    verbs: [get]
  {{- end }}
  {{- end }}
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
{{- if .restrictToOwnPod }}
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata:
  name: {{ printf "%s-%s-own-pod" $ns $name }}
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules:
      - apiGroups: [""]
        apiVersions: [v1]
        operations: [UPDATE]
        resources: [pods]
  matchConditions:
    - name: is-reconfig
      expression: {{ printf "request.userInfo.username == 'system:serviceaccount:%s:%s'" $ns $name | quote }}
  validations:
    - expression: >-
        'authentication.kubernetes.io/pod-name' in request.userInfo.extra &&
        request.userInfo.extra['authentication.kubernetes.io/pod-name'][0] == object.metadata.name
      message: reconfig may change only the pod it runs in
    - expression: object.spec == oldObject.spec
      message: reconfig may change only pod metadata
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata:
  name: {{ printf "%s-%s-own-pod" $ns $name }}
spec:
  policyName: {{ printf "%s-%s-own-pod" $ns $name }}
  validationActions: [Deny]
  matchResources:
    namespaceSelector:
      matchLabels:
        kubernetes.io/metadata.name: {{ $ns }}
{{- end }}
{{- end -}}
