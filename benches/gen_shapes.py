#!/usr/bin/env python3
"""Generate the input shapes of the memory benchmark (benches/memory_bench.sh).

Each shape is one way a stream can cost a YAML reader far more memory than its
size (issue 12, items 14-16). Standard library only; the output is deterministic.

  flow-mapping   one document, one flow mapping of many short entries
  render         a Helm-like render (benches/gen_render.py), scaled to --mib
  pairs          ConfigMap + Deployment pairs, each Deployment mounting its ConfigMap
  dots           documents separated by `...` and `---`
  laughs         billion laughs: 9 levels of 9 aliases (refused)
  long-alias     a 1 MiB scalar aliased 4,000 times (refused)
"""

import argparse
import os
import subprocess
import sys

MIB = 1 << 20


def flow_mapping(mib):
    out = ["{"]
    size, i = 1, 0
    while size < mib * MIB:
        entry = f"key{i:07d}: value{i:07d}, "
        out.append(entry)
        size += len(entry)
        i += 1
    out.append("last: x}\n")
    return "".join(out)


def pairs(count):
    parts = []
    for i in range(count):
        parts.append(
            f"---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c{i}\ndata:\n  k: v{i}\n"
            f"---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: d{i}\nspec:\n"
            f"  template:\n    spec:\n      volumes:\n        - name: c\n          configMap:\n"
            f"            name: c{i}\n      containers:\n        - name: m\n          image: x\n"
        )
    return "".join(parts)


def dots(mib):
    one = (
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata:\n  k: \""
        + "v" * 1000
        + "\"\n...\n---\n"
    )
    return one * max(1, (mib * MIB) // len(one))


def laughs():
    text = 'a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]\n'
    prev = "a"
    for name in "bcdefghi":
        text += f"{name}: &{name} [" + ", ".join(f"*{prev}" for _ in range(9)) + "]\n"
        prev = name
    return text


def long_alias():
    return 'a: &a "' + "x" * MIB + '"\nb: [' + "*a, " * 4000 + "]\n"


def render(mib, out):
    # gen_render.py makes ~0.8 KiB a document.
    docs = max(100, int(mib * MIB / 820))
    here = os.path.dirname(os.path.abspath(__file__))
    subprocess.run(
        [sys.executable, os.path.join(here, "gen_render.py"), "--docs", str(docs), "--out", out],
        check=True,
    )


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("shape", choices=["flow-mapping", "render", "pairs", "dots", "laughs", "long-alias"])
    p.add_argument("--mib", type=int, default=13, help="size for flow-mapping, render, dots")
    p.add_argument("--count", type=int, default=100_000, help="pairs for `pairs`")
    p.add_argument("--out", required=True)
    a = p.parse_args()
    if a.shape == "render":
        render(a.mib, a.out)
        return
    text = {
        "flow-mapping": lambda: flow_mapping(a.mib),
        "pairs": lambda: pairs(a.count),
        "dots": lambda: dots(a.mib),
        "laughs": laughs,
        "long-alias": long_alias,
    }[a.shape]()
    with open(a.out, "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
