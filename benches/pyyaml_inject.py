#!/usr/bin/env python3
"""The peer for `reconfig inject`: a Helm post-renderer as teams write it today.

Reads a multi-document manifest stream on stdin, indexes ConfigMaps and
Secrets by (namespace, name), and for every pod template of a Deployment,
StatefulSet, DaemonSet, ReplicaSet, CronJob or Argo Rollout writes a
`checksum/config` annotation hashing the config that template reads. Jobs
and Helm hooks are left alone, as reconfig does by default. The stream goes
to stdout through PyYAML's libyaml-backed dumper.

It finds references in the same places reconfig does (volumes, projected
sources, envFrom, configMapKeyRef/secretKeyRef, with `items` narrowing a
volume to some keys) and computes the checksum in reconfig's documented
format, so the two tools' digests can be compared one for one.
"""

import base64
import hashlib
import struct
import sys

import yaml

try:
    Loader, Dumper = yaml.CSafeLoader, yaml.CSafeDumper
except AttributeError:
    Loader, Dumper = yaml.SafeLoader, yaml.SafeDumper
    print("pyyaml_inject: WARNING: PyYAML was built without libyaml; falling back to the "
          "pure-Python loader and dumper, which are many times slower. "
          "Timings from this run do not represent the peer.", file=sys.stderr)

ANNOTATION = "checksum/config"
DOMAIN = b"reconfig-checksum-v1\n"

# (apiVersion group, kind) -> path to the pod template.
POD_TEMPLATES = {
    ("apps", "Deployment"): ("spec", "template"),
    ("apps", "StatefulSet"): ("spec", "template"),
    ("apps", "DaemonSet"): ("spec", "template"),
    ("apps", "ReplicaSet"): ("spec", "template"),
    ("batch", "CronJob"): ("spec", "jobTemplate", "spec", "template"),
    ("argoproj.io", "Rollout"): ("spec", "template"),
}


def group_of(doc):
    api = doc.get("apiVersion") or ""
    return api.split("/")[0] if "/" in api else ""


def text_of(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def config_keys(doc):
    """{key: (sha256 of the bytes a pod reads, reaches env via envFrom)}."""
    kind = doc["kind"]
    plain, encoded = ("data", "binaryData") if kind == "ConfigMap" else ("stringData", "data")
    keys = {}
    for k, v in (doc.get(encoded) or {}).items():
        raw = base64.b64decode("".join(text_of(v).split()), validate=True)
        # binaryData never reaches the environment; a Secret's data does.
        keys[str(k)] = (hashlib.sha256(raw).digest(), kind == "Secret")
    # stringData overrides data, as the API server merges them.
    for k, v in (doc.get(plain) or {}).items():
        keys[str(k)] = (hashlib.sha256(text_of(v).encode()).digest(), True)
    return keys


class Selection:
    __slots__ = ("whole", "env", "keys")

    def __init__(self):
        self.whole = False
        self.env = False
        self.keys = set()

    def resolve(self, obj_keys):
        out = {k: d for k, (d, in_env) in obj_keys.items() if self.whole or (self.env and in_env)}
        for k in self.keys:
            out[k] = obj_keys[k][0] if k in obj_keys else None
        return out


def references(pod_spec):
    """Yield (kind, name, how) for every ConfigMap/Secret the pod spec reads.

    how is "whole", "env", or a list of key names.
    """
    def volume_ref(kind, src, name_field):
        name = src.get(name_field)
        if name:
            items = [i["key"] for i in src.get("items") or [] if i.get("key")]
            yield kind, name, items or "whole"

    for vol in pod_spec.get("volumes") or []:
        if vol.get("configMap"):
            yield from volume_ref("ConfigMap", vol["configMap"], "name")
        if vol.get("secret"):
            yield from volume_ref("Secret", vol["secret"], "secretName")
        for src in (vol.get("projected") or {}).get("sources") or []:
            if src.get("configMap"):
                yield from volume_ref("ConfigMap", src["configMap"], "name")
            if src.get("secret"):
                yield from volume_ref("Secret", src["secret"], "name")
    for field in ("initContainers", "containers", "ephemeralContainers"):
        for ctr in pod_spec.get(field) or []:
            for src in ctr.get("envFrom") or []:
                for ref_field, kind in (("configMapRef", "ConfigMap"), ("secretRef", "Secret")):
                    ref = src.get(ref_field)
                    if ref and ref.get("name"):
                        yield kind, ref["name"], "env"
            for env in ctr.get("env") or []:
                value_from = env.get("valueFrom") or {}
                for ref_field, kind in (("configMapKeyRef", "ConfigMap"), ("secretKeyRef", "Secret")):
                    ref = value_from.get(ref_field)
                    if ref and ref.get("name") and ref.get("key"):
                        yield kind, ref["name"], [ref["key"]]


def frame(h, b):
    h.update(struct.pack(">Q", len(b)))
    h.update(b)


def checksum(used):
    """used: {(kind, name): {key: digest or None}}, hashed in canonical order."""
    h = hashlib.sha256(DOMAIN)
    for (kind, name), keys in sorted(used.items()):
        frame(h, kind.encode())
        frame(h, name.encode())
        h.update(struct.pack(">Q", len(keys)))
        for key in sorted(keys, key=str.encode):
            frame(h, key.encode())
            digest = keys[key]
            if digest is None:
                h.update(b"\x00")
            else:
                h.update(b"\x01")
                h.update(digest)
    return h.hexdigest()


def main():
    docs = [d for d in yaml.load_all(sys.stdin.buffer, Loader=Loader) if d is not None]

    objects = {}
    for d in docs:
        if isinstance(d, dict) and d.get("kind") in ("ConfigMap", "Secret") and group_of(d) == "":
            md = d.get("metadata") or {}
            objects[(d["kind"], md.get("namespace") or "", md["name"])] = config_keys(d)

    annotated = missing = 0
    for d in docs:
        if not isinstance(d, dict):
            continue
        path = POD_TEMPLATES.get((group_of(d), d.get("kind")))
        md = d.get("metadata") or {}
        if path is None or "helm.sh/hook" in (md.get("annotations") or {}):
            continue
        template = d
        for step in path:
            template = (template or {}).get(step)
        if not template:
            continue
        ns = md.get("namespace") or ""

        selections = {}
        for kind, name, how in references(template.get("spec") or {}):
            sel = selections.setdefault((kind, name), Selection())
            if how == "whole":
                sel.whole = True
            elif how == "env":
                sel.env = True
            else:
                sel.keys.update(how)
        used = {}
        for (kind, name), sel in selections.items():
            obj = objects.get((kind, ns, name))
            if obj is None:
                missing += 1
                continue
            used[(kind, name)] = sel.resolve(obj)
        if not used:
            continue

        tmeta = template.get("metadata")
        if tmeta is None:
            tmeta = template["metadata"] = {}
        if not tmeta.get("annotations"):
            tmeta["annotations"] = {}
        tmeta["annotations"][ANNOTATION] = checksum(used)
        annotated += 1

    yaml.dump_all(docs, sys.stdout, Dumper=Dumper, explicit_start=True,
                  sort_keys=False, default_flow_style=False, allow_unicode=True)
    print(f"pyyaml_inject: annotated {annotated} pod templates"
          + (f", {missing} references not in the stream" if missing else ""), file=sys.stderr)


if __name__ == "__main__":
    main()
