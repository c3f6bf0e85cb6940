#!/usr/bin/env python3
"""Measures the scanner's precision and recall on a corpus written by
gen_precision.py: runs `keyward scan --format json` over OUT/tree and
compares the findings with OUT/manifest.tsv.

  recall            planted hits reported by their rule (or, for a line a
                    more specific rule also matches, by any rule)
  near-miss (prov.) near misses reported by a provider rule: must be 0
  near-miss (gen.)  near misses reported by the generic rule (a random
                    value under a secret-like name, so arguably a secret)
  clean FPs         findings on lines nothing was planted on, per 100 MB

usage: precision.py OUT KEYWARD [RESULT.md]"""
import collections
import json
import os
import subprocess
import sys
import time


def main():
    out, keyward = sys.argv[1], os.path.abspath(sys.argv[2])
    result = sys.argv[3] if len(sys.argv) > 3 else None
    tree = os.path.join(out, "tree")
    planted = {}
    for row in open(os.path.join(out, "manifest.tsv")):
        kind, rel, line, rule, span = row.rstrip("\n").split("\t")
        for k in range(max(1, int(span))):
            planted[(rel, int(line) + k)] = (kind, rule, k == 0)
    size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(tree) for f in fs)
    t0 = time.time()
    proc = subprocess.run([keyward, "scan", "--format", "json", "--no-ignore", "."], cwd=tree,
                          capture_output=True, text=True)
    elapsed = time.time() - t0
    if proc.returncode not in (0, 1):
        sys.exit(f"keyward scan failed: {proc.stderr}")
    findings = json.loads(proc.stdout)
    found = collections.defaultdict(set)
    for f in findings:
        found[(os.path.normpath(f["file"]), f["line"])].add(f["rule"])
    hits = [(k, v) for k, v in planted.items() if v[0] == "hit" and v[2]]
    missed = collections.Counter()
    wrong_rule = collections.Counter()
    for key, (_, rule, _) in hits:
        rules = found.get(key, set())
        if rule not in rules:
            (wrong_rule if rules else missed)[rule] += 1
    near_provider, near_generic, clean = collections.Counter(), collections.Counter(), collections.Counter()
    examples = []
    for key, rules in found.items():
        kind, of = planted.get(key, ("clean", None, True))[:2]
        for rule in rules:
            if kind == "miss":
                if rule == "generic-secret-assignment":
                    near_generic[of] += 1
                else:
                    near_provider[rule] += 1
                    examples.append(("near-miss", key, rule))
            elif kind == "clean":
                clean[rule] += 1
                if len(examples) < 20:
                    examples.append(("clean", key, rule))
    n_miss = sum(1 for v in planted.values() if v[0] == "miss" and v[2])
    per100 = lambda n: n * (100 << 20) / size
    lines = [
        f"- corpus: {size / (1 << 20):.1f} MB, {len(hits)} planted secrets of "
        f"{len(set(v[1] for _, v in hits))} rules, {n_miss} near-miss decoys",
        f"- scan time: {elapsed:.2f} s (`keyward scan --format json`, all rules, loaded machine)",
        f"- recall: {len(hits) - sum(missed.values()) - sum(wrong_rule.values())}/{len(hits)}"
        f" by the planted rule; missed entirely: {sum(missed.values())} {dict(missed)};"
        f" reported by another rule: {sum(wrong_rule.values())} {dict(wrong_rule)}",
        f"- near misses reported by a provider rule: {sum(near_provider.values())} {dict(near_provider)}",
        f"- near misses reported by the generic rule (random values of the wrong length or"
        f" alphabet under a secret-like name): {sum(near_generic.values())}, by decoy of rule"
        f" {dict(near_generic.most_common())}",
        f"- findings on clean lines: {sum(clean.values())} ({per100(sum(clean.values())):.2f} per 100 MB)"
        f" {dict(clean)}",
        f"- generic-secret-assignment false positives per 100 MB: "
        f"{per100(clean['generic-secret-assignment']):.2f}",
    ]
    for kind, (rel, line), rule in examples[:10]:
        lines.append(f"  - example {kind}: {rel}:{line} {rule}")
    print("\n".join(lines))
    if result:
        with open(result, "a") as f:
            f.write("\n".join(lines) + "\n")


main()
