#!/usr/bin/env python3
"""Check that reconfig's and the peer's outputs did the same job.

    compare_outputs.py INPUT RECONFIG_OUT PEER_OUT

Both outputs must parse as YAML and hold as many documents as the input.
Prints, for each, how many pod templates carry a 64-hex `checksum/config`,
and on how many templates the two digests agree (the peer computes
reconfig's documented checksum format, so they should all agree). Exits
non-zero only if an output is unreadable or lost documents; a digest
disagreement is reported, not fatal, as it says nothing about speed.
"""

import re
import sys

import yaml

Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
HEX64 = re.compile(r"^[0-9a-f]{64}$")
TEMPLATE_PATHS = (("spec", "template"), ("spec", "jobTemplate", "spec", "template"))


def checksums(path):
    with open(path, "rb") as f:
        docs = [d for d in yaml.load_all(f, Loader=Loader) if d is not None]
    found = {}
    for d in docs:
        md = d.get("metadata") or {}
        for steps in TEMPLATE_PATHS:
            node = d
            for s in steps:
                node = node.get(s) if isinstance(node, dict) else None
            ann = ((node or {}).get("metadata") or {}).get("annotations") or {}
            value = ann.get("checksum/config")
            if isinstance(value, str) and HEX64.match(value):
                found[(d.get("kind"), md.get("namespace"), md.get("name"), ".".join(steps))] = value
    return len(docs), found


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__.strip().split("\n\n")[1])
    inp, ours, peer = sys.argv[1:]
    n_in, before = checksums(inp)
    n_ours, got = checksums(ours)
    n_peer, want = checksums(peer)
    print(f"documents: input {n_in}, reconfig {n_ours}, peer {n_peer}")
    print(f"pod templates with a checksum/config digest: reconfig {len(got)}, peer {len(want)} "
          f"(input already had {len(before)})")
    same = sum(1 for k, v in got.items() if want.get(k) == v)
    print(f"digests agreeing: {same} of {len(want)}")
    only = sorted(set(got) ^ set(want))
    for k in only[:5]:
        print(f"  annotated by {'reconfig' if k in got else 'the peer'} only: {k}")
    if n_ours != n_in or n_peer != n_in:
        sys.exit("compare_outputs: an output has a different number of documents than the input")


if __name__ == "__main__":
    main()
