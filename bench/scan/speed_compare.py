#!/usr/bin/env python3
"""Times `keyward scan` on a directory against ripgrep searching the same
anchors (every built-in rule's, from kw_bench_scan_anchors) and bench.py's
10 anchors, interleaved round by round in one run; wall best/median and the
CPU time (user + system) of each command.

usage: speed_compare.py TREE [ROUNDS] [--old BIN] [--keyward BIN] [--anchors BIN]
  TREE     e.g. the tree/ of `gen_corpus.py OUT 200`
  --old    an older keyward build to time alongside (optional)"""
import argparse
import os
import resource
import statistics
import subprocess
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))


def rg_ten():
    """bench.py's RG_ALL (the 10 anchors of the original rule set)."""
    ns = {"__file__": os.path.join(HERE, "bench.py")}
    src = open(os.path.join(HERE, "bench.py")).read()
    exec(src[:src.index("def tree_bytes")], ns)
    return ns["RG_ALL"]


def timed(cmd):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.monotonic()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.monotonic() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("tree")
    ap.add_argument("rounds", nargs="?", type=int, default=5)
    ap.add_argument("--old")
    ap.add_argument("--keyward", default=os.path.join(ROOT, "build", "keyward"))
    ap.add_argument("--anchors", default=os.path.join(ROOT, "build", "bench", "kw_bench_scan_anchors"))
    a = ap.parse_args()
    pats = tempfile.NamedTemporaryFile("wb", suffix=".anchors", delete=False)
    pats.write(subprocess.run([a.anchors], check=True, stdout=subprocess.PIPE).stdout)
    pats.close()
    nanchors = sum(1 for _ in open(pats.name))
    cmds = {"keyward scan --no-ignore --format json TREE":
            [a.keyward, "scan", "--no-ignore", "--format", "json", a.tree]}
    if a.old:
        cmds["(old build) keyward scan --no-ignore --format json TREE"] = \
            [a.old, "scan", "--no-ignore", "--format", "json", a.tree]
    cmds["rg --no-ignore -c -f anchors.txt TREE (%d anchors)" % nanchors] = \
        ["rg", "--no-ignore", "-c", "-f", pats.name, a.tree]
    cmds["rg --no-ignore -c -e ... TREE (bench.py's 10 anchors)"] = \
        ["rg", "--no-ignore", "-c"] + rg_ten() + [a.tree]
    wall = {k: [] for k in cmds}
    cpu = {k: [] for k in cmds}
    for _ in range(a.rounds):
        for k, c in cmds.items():
            w, u = timed(c)
            wall[k].append(w)
            cpu[k].append(u)
    os.unlink(pats.name)
    size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(a.tree) for f in fs)
    print("corpus %s: %.0f MB; %d rounds, interleaved; %d CPUs, load average at the end %.1f\n"
          % (a.tree, size / 1e6, a.rounds, os.cpu_count(), os.getloadavg()[0]))
    print("| command | wall best s | wall median s | MB/s (best) | CPU median s |")
    print("|---|---:|---:|---:|---:|")
    for k in cmds:
        print("| `%s` | %.2f | %.2f | %.0f | %.2f |" % (k, min(wall[k]), statistics.median(wall[k]),
                                                      size / 1e6 / min(wall[k]),
                                                      statistics.median(cpu[k])))
    kw = next(iter(cmds))
    print()
    for k in cmds:
        if k.startswith("rg"):
            print("- speed of keyward / speed of `%s`: best %.2fx, median %.2fx; CPU used %.2fx"
                  % (k, min(wall[k]) / min(wall[kw]),
                     statistics.median(wall[k]) / statistics.median(wall[kw]),
                     statistics.median(cpu[kw]) / statistics.median(cpu[k])))


main()
