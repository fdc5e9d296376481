#!/usr/bin/env python3
"""Generate a deterministic Helm-like render of a large umbrella chart.

The output is what `helm template bench ./chart` prints: one document per
template, each introduced by `---` and a `# Source:` comment, ordered by
Helm's install order. Workloads reference ConfigMaps and Secrets in every
form `reconfig inject` understands, so the render doubles as a workload
for `reconfig inject` and for the PyYAML peer in pyyaml_inject.py.

Standard library only. Same seed and --docs give byte-identical output.
"""

import argparse
import base64
import json
import math
import random
import re
import sys

NAMESPACE = "bench"
RELEASE = "bench"
CHART = "bench-4.12.3"

# Percent of documents per kind: ~30% config, ~25% workloads, ~45% the rest.
MIX = [
    ("ConfigMap", 18.0),
    ("Secret", 12.0),
    ("Deployment", 11.0),
    ("StatefulSet", 4.0),
    ("DaemonSet", 2.0),
    ("CronJob", 3.5),
    ("Rollout", 2.5),
    ("ReplicaSet", 0.5),
    ("Job", 1.5),
    ("Service", 12.0),
    ("ServiceAccount", 9.0),
    ("Role", 5.0),
    ("RoleBinding", 5.0),
    ("Ingress", 5.0),
    ("PodDisruptionBudget", 5.0),
    ("HorizontalPodAutoscaler", 4.0),
]

# Kinds whose pod template reconfig annotates. Jobs are left alone on purpose
# (their templates are immutable), so they act as look-alike distractors.
ANNOTATED = {"Deployment", "StatefulSet", "DaemonSet", "CronJob", "Rollout", "ReplicaSet"}
WORKLOADS = ANNOTATED | {"Job"}

# Helm's releaseutil.InstallOrder; unknown kinds (Rollout) sort last.
INSTALL_ORDER = [
    "PodDisruptionBudget", "ServiceAccount", "Secret", "ConfigMap", "Role",
    "RoleBinding", "Service", "DaemonSet", "ReplicaSet", "Deployment",
    "HorizontalPodAutoscaler", "StatefulSet", "Job", "CronJob", "Ingress",
]

DOMAINS = [
    "accounts", "auth", "billing", "cart", "catalog", "checkout", "orders",
    "payments", "ledger", "search", "inventory", "shipping", "pricing",
    "reviews", "notifications", "profiles", "sessions", "media", "reports",
    "analytics", "gateway", "identity", "fraud", "loyalty", "promotions",
    "recommendations", "tax", "invoices", "audit", "ratings", "wishlist",
    "warehouse", "returns", "support", "messaging", "geo", "currency",
    "feeds", "exports", "scheduler",
]
ROLES = [
    "api", "worker", "consumer", "frontend", "backend", "sync", "indexer",
    "gateway", "proxy", "cache", "store", "relay", "admin", "grpc", "web",
]
IMAGES = [
    ("registry.example.com/platform/{name}", "2.{a}.{b}"),
    ("ghcr.io/example/{name}", "v1.{a}.{b}"),
    ("docker.io/library/nginx", "1.25.{b}-alpine"),
    ("quay.io/example/{name}", "sha-{h}"),
]


class Lit(str):
    """Emit as a literal block scalar (`|`, or `|-` without final newline)."""


class Q(str):
    """Emit double-quoted, as templates do with `{{ .Values.x | quote }}`."""


_PLAIN_OK = re.compile(r"^[A-Za-z0-9_./$(){}][A-Za-z0-9_./:@=,$(){}* -]*$")
_RESOLVES = re.compile(
    r"^(?:~|null|Null|NULL|y|Y|yes|Yes|YES|n|N|no|No|NO|true|True|TRUE|"
    r"false|False|FALSE|on|On|ON|off|Off|OFF|"
    r"[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?(?:[eE][-+]?[0-9]+)?|"
    r"[-+]?\.[0-9]+|0x[0-9a-fA-F_]+|0o?[0-7_]+|[0-9]+(?::[0-5]?[0-9])+|"
    r"\d{4}-\d\d?-\d\d?.*)$"
)


def scalar(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, Q):
        return json.dumps(str(v))
    s = str(v)
    if (_PLAIN_OK.match(s) and not _RESOLVES.match(s) and ": " not in s
            and " #" not in s and not s.endswith((":", " "))):
        return s
    return json.dumps(s)


class Emitter:
    """Block-style YAML in the shape Helm templates produce.

    seq_indent picks between the two list styles found in real charts:
    `helm create` indents list items under their key, kubectl-style
    templates do not. An umbrella chart mixes both.
    """

    def __init__(self, seq_indent):
        self.seq_indent = seq_indent
        self.out = []

    def mapping(self, d, ind):
        pad = " " * ind
        for k, v in d.items():
            if isinstance(v, dict) and v:
                self.out.append(f"{pad}{k}:\n")
                self.mapping(v, ind + 2)
            elif isinstance(v, list) and v:
                self.out.append(f"{pad}{k}:\n")
                self.sequence(v, ind + 2 if self.seq_indent else ind)
            else:
                self.out.append(f"{pad}{k}:{self.inline(v, ind)}")

    def sequence(self, items, ind):
        pad = " " * ind
        for item in items:
            if isinstance(item, dict) and item:
                # First key shares the dash line; the rest align under it.
                sub = Emitter(self.seq_indent)
                sub.mapping(item, ind + 2)
                first = sub.out[0]
                self.out.append(f"{pad}- {first[ind + 2:]}")
                self.out.extend(sub.out[1:])
            elif isinstance(item, list) and item:
                raise ValueError("nested sequences are not used in manifests")
            else:
                self.out.append(f"{pad}-{self.inline(item, ind)}")

    def inline(self, v, ind):
        """Text after `key:` or `-`, including the newline(s)."""
        if isinstance(v, dict):
            return " {}\n"
        if isinstance(v, list):
            return " []\n"
        if isinstance(v, Lit):
            body = str(v)
            head = " |\n" if body.endswith("\n") else " |-\n"
            pad = " " * (ind + 2)
            lines = body[:-1].split("\n") if body.endswith("\n") else body.split("\n")
            return head + "".join(f"{pad}{ln}\n" if ln else "\n" for ln in lines)
        return f" {scalar(v)}\n"


def emit(doc, seq_indent):
    e = Emitter(seq_indent)
    e.mapping(doc, 0)
    return "".join(e.out)


# ---------------------------------------------------------------- content


class Gen:
    def __init__(self, rng):
        self.r = rng

    def hexs(self, n):
        return "".join(self.r.choice("0123456789abcdef") for _ in range(n))

    def word(self):
        return self.r.choice(DOMAINS)

    def b64(self, nbytes):
        return base64.b64encode(self.r.randbytes(nbytes)).decode()

    def password(self, n=24):
        alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789"
        return "".join(self.r.choice(alphabet) for _ in range(n))

    def application_yaml(self, comp):
        r = self.r
        feats = "\n".join(
            f"  {self.word()}-{r.choice(ROLES)}: {r.choice(['true', 'false'])}"
            for _ in range(r.randint(2, 6)))
        peers = "\n".join(
            f"  - name: {self.word()}\n    url: http://{RELEASE}-{self.word()}:{r.choice([80, 8080, 9090])}"
            f"\n    timeout: {r.randint(1, 30)}s"
            for _ in range(r.randint(1, 4)))
        return (
            f"server:\n  port: 8080\n  shutdown: graceful\n  compression:\n    enabled: true\n"
            f"spring:\n  application:\n    name: {comp}\n  datasource:\n"
            f"    url: jdbc:postgresql://{RELEASE}-postgresql:5432/{comp.replace('-', '_')}\n"
            f"    hikari:\n      maximum-pool-size: {r.randint(5, 50)}\n"
            f"      connection-timeout: {r.randint(1000, 30000)}\n"
            f"management:\n  endpoints:\n    web:\n      exposure:\n        include: health,info,prometheus\n"
            f"features:\n{feats}\n"
            f"upstreams:\n{peers}\n"
            f"logging:\n  level:\n    root: {r.choice(['INFO', 'WARN', 'DEBUG'])}\n"
            f"    com.example.{comp.split('-')[0]}: DEBUG\n"
        )

    def nginx_conf(self, comp):
        r = self.r
        locs = "".join(
            f"        location /{self.word()}/ {{\n"
            f"            proxy_pass http://{RELEASE}-{self.word()}-{r.choice(ROLES)}:{r.choice([80, 8080])};\n"
            f"            proxy_read_timeout {r.randint(5, 120)}s;\n"
            f"            proxy_set_header Host $host;\n"
            f"            proxy_set_header X-Request-Id $request_id;\n"
            f"        }}\n"
            for _ in range(r.randint(1, 4)))
        return (
            f"worker_processes auto;\n"
            f"events {{\n    worker_connections {r.choice([1024, 2048, 4096])};\n}}\n"
            f"http {{\n"
            f"    # upstream timeouts are tuned per environment in values.yaml\n"
            f"    log_format main '$remote_addr - $remote_user [$time_local] \"$request\" '\n"
            f"                    '$status $body_bytes_sent \"$http_referer\"';\n"
            f"    access_log /dev/stdout main;\n"
            f"    server {{\n        listen 8080;\n        server_name {comp}.example.com;\n"
            f"{locs}"
            f"        location /healthz {{\n            return 200 'ok';\n        }}\n"
            f"    }}\n}}\n"
        )

    def properties(self, comp):
        r = self.r
        lines = [f"# {comp} runtime settings", f"app.name={comp}"]
        for _ in range(r.randint(4, 14)):
            lines.append(f"{self.word()}.{r.choice(ROLES)}.{r.choice(['timeout', 'retries', 'size', 'enabled', 'url'])}"
                         f"={r.choice([str(r.randint(1, 9999)), 'true', 'false', f'http://{self.word()}:8080'])}")
        return "\n".join(lines) + "\n"

    def json_conf(self, comp):
        r = self.r
        obj = {
            "service": comp,
            "limits": {"rps": r.randint(10, 5000), "burst": r.randint(10, 500)},
            "endpoints": [f"https://{self.word()}.internal.example.com" for _ in range(r.randint(1, 3))],
            "flags": {self.word(): r.random() < 0.5 for _ in range(r.randint(1, 4))},
        }
        return json.dumps(obj, indent=2, sort_keys=True) + "\n"

    def script(self, comp):
        r = self.r
        return (
            "#!/bin/sh\nset -eu\n"
            "# wait for dependencies before starting\n"
            f"until nc -z {RELEASE}-{self.word()} {r.choice([5432, 6379, 9092])}; do\n"
            "  echo \"waiting\"; sleep 2\ndone\n"
            f"exec /app/{comp} --config /etc/{comp}/application.yaml \"$@\"\n"
        )

    def configmap_data(self, comp):
        r = self.r
        data = {}
        binary = {}
        shape = r.random()
        if shape < 0.13:
            data["application.yaml"] = Lit(self.application_yaml(comp))
        elif shape < 0.18:
            data["nginx.conf"] = Lit(self.nginx_conf(comp))
        elif shape < 0.25:
            data["app.properties"] = Lit(self.properties(comp))
        elif shape < 0.32:
            data["config.json"] = Lit(self.json_conf(comp))
        if r.random() < 0.06:
            data["entrypoint.sh"] = Lit(self.script(comp))
        # Plain env-style keys: some bare, some quoted as Helm's `quote` does.
        for _ in range(r.randint(1 if data else 2, 5)):
            suffix, val = r.choice([
                ("URL", f"http://{RELEASE}-{self.word()}:8080"),
                ("TIMEOUT", Q(f"{r.randint(1, 60)}s")),
                ("LOG_LEVEL", r.choice(["info", "warn", "debug"])),
                ("ENABLED", Q(r.choice(["true", "false"]))),
                ("MAX_CONNS", Q(str(r.randint(1, 500)))),
                ("REGION", r.choice(["eu-west-1", "us-east-2"])),
            ])
            data[f"{self.word().upper()}_{suffix}"] = val
        if not data or r.random() < 0.08:
            data["banner"] = Lit(f"{comp} — managed by Helm\n")
        if r.random() < 0.06:
            binary["truststore.jks"] = self.b64(r.randint(200, 900))
        return data, binary

    def secret_body(self, comp):
        r = self.r
        shape = r.random()
        if shape < 0.06:
            return "kubernetes.io/tls", {
                "tls.crt": self.b64(r.randint(700, 1100)),
                "tls.key": self.b64(r.randint(200, 400)),
            }, None
        if shape < 0.55:
            data = {
                "username": base64.b64encode(comp.replace("-", "_").encode()).decode(),
                "password": base64.b64encode(self.password().encode()).decode(),
            }
            for _ in range(r.randint(0, 2)):
                data[f"{self.word()}-api-key"] = base64.b64encode(self.password(32).encode()).decode()
            return "Opaque", data, None
        string = {
            "DATABASE_URL": Q(f"postgres://{comp.replace('-', '_')}:{self.password(16)}@{RELEASE}-postgresql:5432/app"),
            "REDIS_PASSWORD": Q(self.password()),
        }
        if r.random() < 0.4:
            string["credentials.yaml"] = Lit(
                f"clientId: {comp}\nclientSecret: {self.password(40)}\n"
                f"tokenUrl: https://auth.example.com/oauth/token\nscopes:\n- read\n- write\n")
        return "Opaque", None, string


# ---------------------------------------------------------------- documents


class Chart:
    def __init__(self, rng, ndocs):
        self.r = rng
        self.g = Gen(rng)
        self.counts = self.quota(ndocs)
        nwork = sum(self.counts[k] for k in WORKLOADS)
        self.ncomp = max(1, math.ceil(nwork / 3))
        self.comps = self.component_names(self.ncomp)
        self.seq_indent = [rng.random() < 0.7 for _ in range(self.ncomp)]
        self.helm_labels = [rng.random() < 0.35 for _ in range(self.ncomp)]
        self.comp_index = {name: i for i, name in enumerate(self.comps)}
        self.cms = {c: [] for c in range(self.ncomp)}
        self.secrets = {c: [] for c in range(self.ncomp)}
        self.cm_keys = {}
        self.secret_keys = {}
        self.docs = []
        self.taken = set()
        self.pod_templates = 0

    @staticmethod
    def quota(n):
        raw = [(k, n * p / 100.0) for k, p in MIX]
        counts = {k: int(v) for k, v in raw}
        left = n - sum(counts.values())
        for k, v in sorted(raw, key=lambda kv: kv[1] - int(kv[1]), reverse=True)[:left]:
            counts[k] += 1
        return counts

    def component_names(self, n):
        names = []
        for i in range(n):
            d = DOMAINS[i % len(DOMAINS)]
            ro = ROLES[(i // len(DOMAINS)) % len(ROLES)]
            gen = i // (len(DOMAINS) * len(ROLES))
            names.append(f"{d}-{ro}" + (f"-{gen + 1}" if gen else ""))
        return names

    def spread(self, kind):
        """(index, component) pairs, spreading a kind evenly over components."""
        n = self.counts[kind]
        return [(i, i * self.ncomp // n) for i in range(n)] if n else []

    def unique(self, kind, name):
        base, n = name, 2
        while (kind, name) in self.taken:
            name, n = f"{base}-{n}", n + 1
        self.taken.add((kind, name))
        return name

    def labels(self, comp):
        if not self.helm_labels[self.comp_index[comp]]:
            # Older charts' label set, still common in umbrella charts.
            return {"app": comp, "chart": CHART, "release": RELEASE, "heritage": "Helm"}
        return {
            "helm.sh/chart": CHART,
            "app.kubernetes.io/name": comp,
            "app.kubernetes.io/instance": RELEASE,
            "app.kubernetes.io/version": Q(f"2.{self.r.randint(0, 40)}.{self.r.randint(0, 9)}"),
            "app.kubernetes.io/managed-by": "Helm",
        }

    def selector(self, comp):
        if not self.helm_labels[self.comp_index[comp]]:
            return {"app": comp, "release": RELEASE}
        return {"app.kubernetes.io/name": comp, "app.kubernetes.io/instance": RELEASE}

    def meta(self, name, comp, namespaced=True, annotations=None):
        m = {"name": name}
        if namespaced:
            m["namespace"] = NAMESPACE
        m["labels"] = self.labels(comp)
        if annotations:
            m["annotations"] = annotations
        return m

    def add(self, kind, name, comp_idx, doc):
        fname = f"{kind.lower()}-{name.removeprefix(RELEASE + '-')}"
        text = f"---\n# Source: {RELEASE}/templates/{fname}.yaml\n" + emit(doc, self.seq_indent[comp_idx])
        order = INSTALL_ORDER.index(kind) if kind in INSTALL_ORDER else len(INSTALL_ORDER)
        self.docs.append((order, fname, text))

    # --- config objects

    def configmaps(self):
        for _, c in self.spread("ConfigMap"):
            comp = self.comps[c]
            suffix = ["config", "env", "files", "settings"][len(self.cms[c]) % 4]
            name = self.unique("ConfigMap", f"{RELEASE}-{comp}-{suffix}")
            data, binary = self.g.configmap_data(comp)
            doc = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": self.meta(name, comp), "data": data}
            if binary:
                doc["binaryData"] = binary
            self.cms[c].append(name)
            self.cm_keys[name] = list(data) + list(binary)
            self.add("ConfigMap", name, c, doc)

    def secret_objs(self):
        for _, c in self.spread("Secret"):
            comp = self.comps[c]
            typ, data, string = self.g.secret_body(comp)
            suffix = "tls" if typ == "kubernetes.io/tls" else ["secret", "credentials", "keys"][len(self.secrets[c]) % 3]
            name = self.unique("Secret", f"{RELEASE}-{comp}-{suffix}")
            doc = {"apiVersion": "v1", "kind": "Secret", "metadata": self.meta(name, comp), "type": typ}
            if data:
                doc["data"] = data
            if string:
                doc["stringData"] = string
            self.secrets[c].append(name)
            self.secret_keys[name] = list(data or string)
            self.add("Secret", name, c, doc)

    # --- pod templates

    def pick_refs(self, c):
        """ConfigMaps and Secrets a workload of component c uses: mostly its
        own, sometimes a neighbour's shared config. Empty only when the
        render is too small to hold any config object."""
        r = self.r
        own = [("ConfigMap", n) for n in self.cms[c]] + [("Secret", n) for n in self.secrets[c]]
        if not own:
            own = ([("ConfigMap", n) for v in self.cms.values() for n in v]
                   + [("Secret", n) for v in self.secrets.values() for n in v])
        picked = r.sample(own, min(len(own), r.choice([1, 1, 1, 2, 2, 3])))
        if r.random() < 0.2:
            shared = self.cms[r.randrange(self.ncomp)][:1]
            picked += [("ConfigMap", n) for n in shared if ("ConfigMap", n) not in picked]
        return picked

    def env_key(self, kind, name):
        """A key of the object to pull into one env var, env-style keys first."""
        keys = (self.cm_keys if kind == "ConfigMap" else self.secret_keys)[name]
        plain = [k for k in keys if "." not in k]
        return self.r.choice(plain or keys)

    def env_refs(self, refs):
        """env and envFrom entries consuming refs: whole objects or single keys."""
        r = self.r
        env, env_from = [], []
        for kind, name, form in refs:
            if form == "envFrom":
                ref = {"configMapRef" if kind == "ConfigMap" else "secretRef": {"name": name}}
                if r.random() < 0.15:
                    ref = {"prefix": "CFG_", **ref}
                env_from.append(ref)
            else:
                key = self.env_key(kind, name)
                sel = {"name": name, "key": key}
                if r.random() < 0.1:
                    sel["optional"] = False
                env.append({"name": re.sub(r"[^A-Z0-9]", "_", key.upper()),
                            "valueFrom": {"configMapKeyRef" if kind == "ConfigMap" else "secretKeyRef": sel}})
        return env, env_from

    def volumes(self, refs):
        r = self.r
        vols = []
        if len(refs) >= 2 and r.random() < 0.4:
            sources = []
            for kind, name, _ in refs:
                src = {"name": name}
                if r.random() < 0.4:
                    k = self.env_key(kind, name)
                    src["items"] = [{"key": k, "path": k}]
                sources.append({"configMap" if kind == "ConfigMap" else "secret": src})
            # Projected sources that are not config must be skipped, not hashed.
            if r.random() < 0.5:
                sources.append({"serviceAccountToken": {"path": "token", "expirationSeconds": 3600}})
            else:
                sources.append({"downwardAPI": {"items": [{"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]}})
            return [{"name": "config", "projected": {"sources": sources}}]
        for j, (kind, name, _) in enumerate(refs):
            if kind == "ConfigMap":
                v = {"name": name}
            else:
                v = {"secretName": name}
            if r.random() < 0.3:
                k = self.env_key(kind, name)
                v["items"] = [{"key": k, "path": k}]
            if r.random() < 0.2:
                v["defaultMode"] = 420
            vols.append({"name": f"{kind.lower()}-{j}", "configMap" if kind == "ConfigMap" else "secret": v})
        return vols

    def container(self, comp, name, env_refs, volumes, rich):
        r, g = self.r, self.g
        img, tag = r.choice(IMAGES)
        ctr = {
            "name": name,
            "image": Q(img.format(name=comp) + ":" + tag.format(a=r.randint(0, 30), b=r.randint(0, 9), h=g.hexs(8))),
        }
        if rich or r.random() < 0.5:
            ctr["imagePullPolicy"] = "IfNotPresent"
        if rich:
            ctr["args"] = [f"--config=/etc/{comp}/application.yaml", f"--log-level={r.choice(['info', 'debug'])}"]
        env, env_from = self.env_refs(env_refs)
        if rich:
            env = [{"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                   {"name": "JAVA_OPTS", "value": Q(f"-Xms{r.choice([256, 512])}m -Xmx{r.choice([512, 1024])}m")}] + env
        if env:
            ctr["env"] = env
        if env_from:
            ctr["envFrom"] = env_from
        ctr["ports"] = [{"name": "http", "containerPort": 8080}]
        if rich or r.random() < 0.5:
            ctr["ports"][0]["protocol"] = "TCP"
        if rich:
            ctr["ports"].append({"name": "metrics", "containerPort": 9090, "protocol": "TCP"})
            ctr["livenessProbe"] = {"httpGet": {"path": "/healthz", "port": "http"},
                                    "initialDelaySeconds": r.choice([10, 15, 30])}
        if rich or r.random() < 0.35:
            ctr["readinessProbe"] = {"httpGet": {"path": "/ready", "port": "http"}}
        res = {"requests": {"cpu": f"{r.choice([50, 100, 200])}m", "memory": f"{r.choice([128, 256])}Mi"}}
        if rich or r.random() < 0.5:
            res["limits"] = {"cpu": Q(f"{r.choice([250, 500, 1000])}m"), "memory": f"{r.choice([256, 512, 1024])}Mi"}
        ctr["resources"] = res
        if volumes:
            ctr["volumeMounts"] = [{"name": v["name"], "mountPath": f"/etc/{comp}/{v['name']}", "readOnly": True}
                                   for v in volumes]
        if rich:
            ctr["securityContext"] = {"readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False,
                                      "capabilities": {"drop": ["ALL"]}}
        return ctr

    def init_container(self, comp, ref):
        env, env_from = self.env_refs([ref])
        ctr = {"name": "migrate", "image": Q(f"registry.example.com/platform/{comp}-migrations:1.{self.r.randint(0, 9)}.0"),
               "command": ["/bin/sh", "-c"],
               "args": [Lit(f"echo migrating {comp}\n/app/migrate --target latest\n")]}
        if env:
            ctr["env"] = env
        if env_from:
            ctr["envFrom"] = env_from
        return ctr

    def pod_template(self, comp, c, kind):
        r = self.r
        # Each reference is consumed one way; together the workloads cover
        # every form reconfig has to find.
        refs = [(kind_, name, r.choice(["envFrom", "keyRef", "volume", "volume"])) for kind_, name in self.pick_refs(c)]
        if refs and kind in ANNOTATED:
            self.pod_templates += 1
        env_refs = [x for x in refs if x[2] != "volume"]
        vols = self.volumes([x for x in refs if x[2] == "volume"])
        labels = self.selector(comp)
        if r.random() < 0.3:
            labels["app.kubernetes.io/component"] = r.choice(ROLES)
        tmeta = {}
        ann_shape = r.random()
        if ann_shape < 0.3:
            tmeta["annotations"] = {"prometheus.io/scrape": Q("true"), "prometheus.io/port": Q("9090")}
        elif ann_shape < 0.37 and kind != "Job":
            # The `include (print $.Template.BasePath ...) | sha256sum` checksum
            # many charts already carry: it must be overwritten, not duplicated.
            # (Not on Jobs, which reconfig skips, so that counting
            # `checksum/config` lines in the output counts annotated templates.)
            tmeta["annotations"] = {"checksum/config": self.g.hexs(64)}
        elif ann_shape < 0.41:
            tmeta["annotations"] = {}
        tmeta["labels"] = labels
        if r.random() < 0.5:
            tmeta = {k: tmeta[k] for k in reversed(list(tmeta))}
        rich = r.random() < 0.15
        spec = {}
        if r.random() < 0.6:
            spec["serviceAccountName"] = f"{RELEASE}-{comp}"
        if rich:
            spec["securityContext"] = {"runAsNonRoot": True, "fsGroup": 10001}
        if refs and r.random() < 0.12:
            spec["initContainers"] = [self.init_container(comp, refs[0][:2] + (r.choice(["envFrom", "keyRef"]),))]
        ctrs = [self.container(comp, comp.split("-")[0], env_refs, vols, rich)]
        if rich and r.random() < 0.3:
            ctrs.append({"name": "config-reloader", "image": Q("ghcr.io/example/reloader:v0.9.1"),
                         "args": ["--watch=/etc/config"]})
        spec["containers"] = ctrs
        if kind in ("Job", "CronJob"):
            spec["restartPolicy"] = "OnFailure"
        if r.random() < 0.15:
            spec["nodeSelector"] = {"kubernetes.io/os": "linux"}
        if rich and r.random() < 0.3:
            spec["tolerations"] = [{"key": "dedicated", "operator": "Equal", "value": "apps", "effect": "NoSchedule"}]
        if vols:
            spec["volumes"] = vols
        return {"metadata": tmeta, "spec": spec}

    def workloads(self):
        r = self.r
        for kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Rollout", "CronJob", "Job"):
            for i, c in self.spread(kind):
                comp = self.comps[c]
                name = f"{RELEASE}-{comp}" + ("" if kind == "Deployment" else f"-{kind.lower()}") + f"-{i}"
                tpl = self.pod_template(comp, c, kind)
                api = {"Deployment": "apps/v1", "StatefulSet": "apps/v1", "DaemonSet": "apps/v1",
                       "ReplicaSet": "apps/v1", "Rollout": "argoproj.io/v1alpha1",
                       "CronJob": "batch/v1", "Job": "batch/v1"}[kind]
                doc = {"apiVersion": api, "kind": kind, "metadata": self.meta(name, comp)}
                sel = {"matchLabels": self.selector(comp)}
                if kind == "CronJob":
                    doc["spec"] = {
                        "schedule": Q(f"{r.randint(0, 59)} {r.choice(['*', '*/6', '2'])} * * *"),
                        "concurrencyPolicy": "Forbid", "successfulJobsHistoryLimit": 3,
                        "jobTemplate": {"spec": {"backoffLimit": 2, "template": tpl}},
                    }
                elif kind == "Job":
                    doc["metadata"]["annotations"] = {"helm.sh/hook": "pre-upgrade,pre-install",
                                                      "helm.sh/hook-delete-policy": "before-hook-creation"}
                    doc["spec"] = {"backoffLimit": 1, "template": tpl}
                elif kind == "DaemonSet":
                    doc["spec"] = {"selector": sel, "updateStrategy": {"type": "RollingUpdate"}, "template": tpl}
                elif kind == "StatefulSet":
                    doc["spec"] = {
                        "serviceName": f"{RELEASE}-{comp}-headless", "replicas": r.choice([1, 3]), "selector": sel,
                        "template": tpl,
                        "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {
                            "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "10Gi"}}}}],
                    }
                elif kind == "Rollout":
                    doc["spec"] = {
                        "replicas": r.choice([2, 3, 5]), "revisionHistoryLimit": 3, "selector": sel, "template": tpl,
                        "strategy": {"canary": {"steps": [{"setWeight": 20}, {"pause": {"duration": "10m"}},
                                                          {"setWeight": 60}, {"pause": {}}]}},
                    }
                else:
                    doc["spec"] = {"replicas": r.choice([1, 2, 3]), "selector": sel, "template": tpl}
                    if r.random() < 0.3:
                        doc["spec"]["revisionHistoryLimit"] = 5
                self.add(kind, name, c, doc)

    # --- everything else

    def others(self):
        r = self.r
        for _, c in self.spread("Service"):
            comp = self.comps[c]
            name = self.unique("Service", f"{RELEASE}-{comp}")
            ports = [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]
            if r.random() < 0.25:
                ports.append({"name": "metrics", "port": 9090, "targetPort": 9090, "protocol": "TCP"})
            self.add("Service", name, c, {"apiVersion": "v1", "kind": "Service", "metadata": self.meta(name, comp),
                                          "spec": {"type": "ClusterIP", "ports": ports,
                                                   "selector": self.selector(comp)}})
        for _, c in self.spread("ServiceAccount"):
            comp = self.comps[c]
            name = self.unique("ServiceAccount", f"{RELEASE}-{comp}")
            ann = {"eks.amazonaws.com/role-arn": f"arn:aws:iam::123456789012:role/{comp}"} if r.random() < 0.3 else None
            doc = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": self.meta(name, comp, annotations=ann)}
            if r.random() < 0.5:
                doc["automountServiceAccountToken"] = False
            self.add("ServiceAccount", name, c, doc)
        for i, c in self.spread("Role"):
            comp = self.comps[c]
            name = f"{RELEASE}-{comp}-{i}"
            self.add("Role", name, c, {
                "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": self.meta(name, comp),
                "rules": [{"apiGroups": [Q("")], "resources": ["configmaps", "secrets"],
                           "verbs": ["get", "watch", "list"]}]
                + ([{"apiGroups": [Q("coordination.k8s.io")], "resources": ["leases"],
                     "verbs": ["get", "create", "update"]}] if r.random() < 0.4 else [])})
        for i, c in self.spread("RoleBinding"):
            comp = self.comps[c]
            name = f"{RELEASE}-{comp}-{i}"
            self.add("RoleBinding", name, c, {
                "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": self.meta(name, comp),
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
                "subjects": [{"kind": "ServiceAccount", "name": f"{RELEASE}-{comp}", "namespace": NAMESPACE}]})
        for i, c in self.spread("Ingress"):
            comp = self.comps[c]
            name = f"{RELEASE}-{comp}-{i}"
            host = f"{comp}.apps.example.com"
            self.add("Ingress", name, c, {
                "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
                "metadata": self.meta(name, comp, annotations={
                    "cert-manager.io/cluster-issuer": "letsencrypt",
                    "nginx.ingress.kubernetes.io/proxy-body-size": Q("8m")} if r.random() < 0.5 else None),
                "spec": {"ingressClassName": "nginx",
                         "tls": [{"hosts": [Q(host)], "secretName": f"{RELEASE}-{comp}-ingress-tls"}],
                         "rules": [{"host": Q(host), "http": {"paths": [{
                             "path": "/", "pathType": "Prefix",
                             "backend": {"service": {"name": f"{RELEASE}-{comp}", "port": {"name": "http"}}}}]}}]}})
        for i, c in self.spread("PodDisruptionBudget"):
            comp = self.comps[c]
            name = f"{RELEASE}-{comp}-{i}"
            self.add("PodDisruptionBudget", name, c, {
                "apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": self.meta(name, comp),
                "spec": {"maxUnavailable": 1, "selector": {"matchLabels": self.selector(comp)}}})
        for i, c in self.spread("HorizontalPodAutoscaler"):
            comp = self.comps[c]
            name = f"{RELEASE}-{comp}-{i}"
            self.add("HorizontalPodAutoscaler", name, c, {
                "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": self.meta(name, comp),
                "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": f"{RELEASE}-{comp}"},
                         "minReplicas": 2, "maxReplicas": r.choice([5, 10, 20]),
                         "metrics": [{"type": "Resource", "resource": {
                             "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 75}}}]}})

    def render(self):
        self.configmaps()
        self.secret_objs()
        self.workloads()
        self.others()
        self.docs.sort(key=lambda d: (d[0], d[1]))
        return "".join(t for _, _, t in self.docs)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--docs", type=int, default=6000, help="number of documents (default 6000, about 4.7 MiB)")
    ap.add_argument("--seed", type=int, default=20240601)
    ap.add_argument("--out", help="output file (default stdout)")
    a = ap.parse_args()
    if a.docs < 1:
        ap.error("--docs must be positive")

    chart = Chart(random.Random(a.seed), a.docs)
    data = chart.render().encode()
    if a.out:
        with open(a.out, "wb") as f:
            f.write(data)
    else:
        sys.stdout.buffer.write(data)
    c = chart.counts
    print(f"gen_render: {len(chart.docs)} documents, {len(data)} bytes ({len(data) / 2**20:.2f} MiB); "
          f"{c['ConfigMap']} ConfigMaps, {c['Secret']} Secrets, "
          f"{sum(c[k] for k in WORKLOADS)} workloads, "
          f"{chart.pod_templates} pod templates to annotate (Jobs excluded)", file=sys.stderr)


if __name__ == "__main__":
    main()
