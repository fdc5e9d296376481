#!/usr/bin/env python3
"""Write a Helm chart that renders to about N documents, for benches/helm_bench.sh.

    gen_helm_chart.py --out DIR [--apps 150]

Each "app" is one template file rendering six documents: a ConfigMap, a
Secret, a ServiceAccount, a Service, a workload (Deployment, StatefulSet,
CronJob or Argo Rollout, in turn) that reads the ConfigMap and Secret in
several ways, and a PodDisruptionBudget. 150 apps give 900 documents. Values
come from values.yaml through helpers, as in real charts, so Helm does real
template work. Standard library only; the output is deterministic.
"""

import argparse
import os
import shutil

CHART_YAML = """apiVersion: v2
name: bench
description: Generated chart for benches/helm_bench.sh ({apps} apps, {docs} documents)
type: application
version: 0.1.0
appVersion: "1.0.0"
"""

HELPERS = """{{- define "bench.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version }}
app.kubernetes.io/name: {{ .name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
{{- end }}

{{- define "bench.podSpec" -}}
serviceAccountName: {{ .root.Release.Name }}-{{ .name }}
containers:
  - name: app
    image: "{{ .root.Values.image.repository }}:{{ .root.Values.image.tag }}"
    args: ["--config", "/etc/app/app.yaml"]
    ports:
      - name: http
        containerPort: 8080
    envFrom:
      - configMapRef:
          name: {{ .root.Release.Name }}-{{ .name }}
    env:
      - name: DB_PASSWORD
        valueFrom:
          secretKeyRef:
            name: {{ .root.Release.Name }}-{{ .name }}
            key: password
      - name: LOG_LEVEL
        valueFrom:
          configMapKeyRef:
            name: {{ .root.Release.Name }}-{{ .name }}
            key: LOG_LEVEL
    resources:
      {{- toYaml .root.Values.resources | nindent 6 }}
    volumeMounts:
      - name: config
        mountPath: /etc/app
      - name: tls
        mountPath: /etc/tls
        readOnly: true
volumes:
  - name: config
    configMap:
      name: {{ .root.Release.Name }}-{{ .name }}
      items:
        - key: app.yaml
          path: app.yaml
  - name: tls
    secret:
      secretName: {{ .root.Release.Name }}-{{ .name }}
{{- end }}
"""

VALUES_HEAD = """image:
  repository: registry.example.com/bench
  tag: "1.0.0"
resources:
  requests: {cpu: 50m, memory: 64Mi}
  limits: {memory: 256Mi}
apps:
"""

WORKLOAD = {
    "Deployment": """apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ $.Release.Name }}-{{ $name }}
  labels:
    {{- include "bench.labels" $ctx | nindent 4 }}
spec:
  replicas: {{ $app.replicas }}
  selector:
    matchLabels:
      app.kubernetes.io/name: {{ $name }}
  template:
    metadata:
      labels:
        {{- include "bench.labels" $ctx | nindent 8 }}
    spec:
      {{- include "bench.podSpec" $ctx | nindent 6 }}
""",
    "StatefulSet": """apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: {{ $.Release.Name }}-{{ $name }}
  labels:
    {{- include "bench.labels" $ctx | nindent 4 }}
spec:
  serviceName: {{ $.Release.Name }}-{{ $name }}
  replicas: {{ $app.replicas }}
  selector:
    matchLabels:
      app.kubernetes.io/name: {{ $name }}
  template:
    metadata:
      labels:
        {{- include "bench.labels" $ctx | nindent 8 }}
    spec:
      {{- include "bench.podSpec" $ctx | nindent 6 }}
""",
    "CronJob": """apiVersion: batch/v1
kind: CronJob
metadata:
  name: {{ $.Release.Name }}-{{ $name }}
  labels:
    {{- include "bench.labels" $ctx | nindent 4 }}
spec:
  schedule: "*/15 * * * *"
  jobTemplate:
    spec:
      template:
        metadata:
          labels:
            {{- include "bench.labels" $ctx | nindent 12 }}
        spec:
          restartPolicy: OnFailure
          {{- include "bench.podSpec" $ctx | nindent 10 }}
""",
    "Rollout": """apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata:
  name: {{ $.Release.Name }}-{{ $name }}
  labels:
    {{- include "bench.labels" $ctx | nindent 4 }}
spec:
  replicas: {{ $app.replicas }}
  selector:
    matchLabels:
      app.kubernetes.io/name: {{ $name }}
  strategy:
    canary:
      steps:
        - setWeight: 20
        - pause: {duration: 1m}
  template:
    metadata:
      labels:
        {{- include "bench.labels" $ctx | nindent 8 }}
    spec:
      {{- include "bench.podSpec" $ctx | nindent 6 }}
""",
}

APP = """{{- $name := "%(name)s" }}
{{- $app := index .Values.apps $name }}
{{- $ctx := dict "root" $ "name" $name }}
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-{{ $name }}
  labels:
    {{- include "bench.labels" $ctx | nindent 4 }}
data:
  LOG_LEVEL: {{ $app.logLevel | quote }}
  FEATURES: {{ join "," $app.features | quote }}
  app.yaml: |
    server:
      port: 8080
      timeout: {{ $app.timeout }}
    features:
    {{- range $app.features }}
      - {{ . }}
    {{- end }}
---
apiVersion: v1
kind: Secret
metadata:
  name: {{ .Release.Name }}-{{ $name }}
  labels:
    {{- include "bench.labels" $ctx | nindent 4 }}
type: Opaque
data:
  password: {{ printf "pw-%%s" $name | b64enc | quote }}
  tls.crt: {{ printf "cert-%%s" $name | b64enc | quote }}
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ .Release.Name }}-{{ $name }}
  labels:
    {{- include "bench.labels" $ctx | nindent 4 }}
---
apiVersion: v1
kind: Service
metadata:
  name: {{ .Release.Name }}-{{ $name }}
  labels:
    {{- include "bench.labels" $ctx | nindent 4 }}
spec:
  selector:
    app.kubernetes.io/name: {{ $name }}
  ports:
    - name: http
      port: 80
      targetPort: http
---
%(workload)s---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ .Release.Name }}-{{ $name }}
  labels:
    {{- include "bench.labels" $ctx | nindent 4 }}
spec:
  maxUnavailable: 1
  selector:
    matchLabels:
      app.kubernetes.io/name: {{ $name }}
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--apps", type=int, default=150)
    a = ap.parse_args()

    if os.path.exists(a.out):
        shutil.rmtree(a.out)
    os.makedirs(os.path.join(a.out, "templates"))
    kinds = list(WORKLOAD)
    values = [VALUES_HEAD]
    for i in range(a.apps):
        name = f"app{i:03d}"
        kind = kinds[i % len(kinds)]
        values.append(f"  {name}:\n    replicas: {1 + i % 3}\n    logLevel: info\n"
                      f"    timeout: {10 + i % 50}s\n    features: [a{i}, b{i}, c]\n")
        with open(os.path.join(a.out, "templates", f"{name}.yaml"), "w") as f:
            f.write(APP % {"name": name, "workload": WORKLOAD[kind]})
    with open(os.path.join(a.out, "Chart.yaml"), "w") as f:
        f.write(CHART_YAML.format(apps=a.apps, docs=a.apps * 6))
    with open(os.path.join(a.out, "values.yaml"), "w") as f:
        f.write("".join(values))
    with open(os.path.join(a.out, "templates", "_helpers.tpl"), "w") as f:
        f.write(HELPERS)


if __name__ == "__main__":
    main()
