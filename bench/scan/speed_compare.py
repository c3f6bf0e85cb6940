#!/usr/bin/env python3
"""Times keyward scan (this build and, if given, an older binary) against ripgrep with
all of keyward's anchors and with bench.py's 10 anchors, best of N runs, side by side.
usage: speed_compare.py TREE [RUNS]  (needs /tmp/sc/pats.txt and /tmp/sc/old/build/keyward;
see bench/results/scan-precision.md for how they were made)"""
import subprocess, time, sys, os
tree = sys.argv[1]
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..")
ns = {"__file__": os.path.join(HERE, "bench.py")}
src = open(os.path.join(HERE, "bench.py")).read()
exec(src[:src.index("def tree_bytes")], ns)
RG_ALL = ns["RG_ALL"]
cmds = {
  "keyward scan --format json, this branch (114 rules)": [os.path.join(ROOT, "build", "keyward"), "scan", "--format", "json", "--no-ignore", tree],
  "keyward scan --format json, 90ca71f (12 rules)": ["/tmp/sc/old/build/keyward", "scan", "--format", "json", "--no-ignore", tree],
  "rg -c, all 114 keyward anchors": ["rg", "--no-ignore", "-c", "-f", "/tmp/sc/pats.txt", tree],
  "rg -c, the 10 anchors of bench.py": ["rg", "--no-ignore", "-c"] + RG_ALL + [tree],
}
best = {k: 1e9 for k in cmds}
for r in range(int(sys.argv[2]) if len(sys.argv) > 2 else 3):
    for k, c in cmds.items():
        t = time.time(); subprocess.run(c, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL); best[k] = min(best[k], time.time() - t)
size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(tree) for f in fs) / 1e6
print(f"corpus {tree}: {size:.0f} MB, best of runs")
for k, v in best.items(): print(f"| {k} | {v:.2f} s | {size / v:.0f} MB/s |")
