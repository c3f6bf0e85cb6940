#!/usr/bin/env python3
"""Times `keyward scan --git-history REPO` (default threads and --threads 1)
against `git log -p --all | rg` and `git log -p -U0 --all | rg` with the same
anchors (every built-in rule's, from kw_bench_scan_anchors), and
`git log -p -U0` alone, interleaved round by round in one run; wall time and
CPU time (user + system of every process of the command).

The repository is generated once (deterministic): gen_corpus.py writes
SIZE_MB of source-like files; their history is COMMITS commits written with
`git fast-import` -- the files arrive a few per commit over the first fifth
of the history, every commit edits 1-4 files (1-3 hunks each of 1-20 lines
inserted, replaced or deleted, from a pool of the corpus's own lines), and
every 50th commit adds a keyward key that a later commit removes again.
The pack is then repacked (`git repack -adf`), as a cloned repository is.

usage: git_speed.py OUT [--size MB] [--commits N] [--rounds R]
         [--keyward BIN] [--anchors BIN]
OUT/repo is reused when it exists.  Prints a Markdown table: best and
median seconds of each command, and the ratios."""
import argparse
import os
import random
import resource
import statistics
import subprocess
import sys
import time
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def keyward_key(rng, prefix="phx_"):
    body = "".join(rng.choice(BASE62) for _ in range(48))
    crc = zlib.crc32((prefix + body).encode())
    digits = ""
    for _ in range(6):
        digits = BASE62[crc % 62] + digits
        crc //= 62
    return prefix + body + digits


def generate(out, size_mb, commits):
    corpus = os.path.join(out, "corpus")
    if not os.path.isdir(os.path.join(corpus, "tree")):
        subprocess.run([sys.executable, os.path.join(HERE, "gen_corpus.py"), corpus, str(size_mb)],
                       check=True)
    tree = os.path.join(corpus, "tree")
    paths = sorted(os.path.relpath(os.path.join(d, f), tree)
                   for d, _, fs in os.walk(tree) for f in fs)
    rng = random.Random(18)
    rng.shuffle(paths)
    pending = [(p, open(os.path.join(tree, p), "rb").read().splitlines(keepends=True))
               for p in paths]
    pool = [l for _, ls in pending[:50] for l in ls if b"phx_" not in l]
    files = {}
    repo = os.path.join(out, "repo")
    subprocess.run(["git", "init", "-q", "-b", "main", repo], check=True)
    fi = subprocess.Popen(["git", "-C", repo, "fast-import", "--quiet"], stdin=subprocess.PIPE)
    w = fi.stdin.write
    add_until = max(1, commits // 5)
    per_commit = -(-len(pending) // add_until)
    planted, to_remove = 0, []
    for c in range(commits):
        touched = set()
        if pending:
            for _ in range(per_commit):
                if pending:
                    p, lines = pending.pop()
                    files[p] = lines
                    touched.add(p)
        existing = sorted(files)
        for p in rng.sample(existing, min(len(existing), rng.randint(1, 4))):
            lines = files[p]
            for _ in range(rng.randint(1, 3)):
                at = rng.randrange(len(lines) + 1)
                n = rng.randint(1, 20)
                kind = rng.random()
                new = [rng.choice(pool) for _ in range(n)]
                if kind < 0.4:
                    lines[at:at] = new
                elif kind < 0.8:
                    lines[at:at + n] = new
                else:
                    del lines[at:at + n]
            touched.add(p)
        if c % 50 == 25:
            p = rng.choice(existing)
            key_line = ("    client = Client('%s')\n" % keyward_key(rng)).encode()
            files[p].insert(rng.randrange(len(files[p]) + 1), key_line)
            to_remove.append((c + rng.randint(1, 30), p, key_line))
            touched.add(p)
            planted += 1
        for when, p, key_line in [t for t in to_remove if t[0] == c]:
            if key_line in files[p]:
                files[p].remove(key_line)
                touched.add(p)
        to_remove = [t for t in to_remove if t[0] != c]
        msg = b"change %d\n" % c
        w(b"commit refs/heads/main\nmark :%d\n" % (c + 1))
        w(b"committer Dev <dev@example.com> %d +0000\n" % (1600000000 + 600 * c))
        w(b"data %d\n%s" % (len(msg), msg))
        if c:
            w(b"from :%d\n" % c)
        for p in sorted(touched):
            data = b"".join(files[p])
            w(b"M 100644 inline %s\ndata %d\n%s\n" % (p.encode(), len(data), data))
    fi.stdin.close()
    if fi.wait() != 0:
        sys.exit("git fast-import failed")
    subprocess.run(["git", "-C", repo, "repack", "-adfq"], check=True)
    with open(os.path.join(out, "planted.txt"), "w") as f:
        f.write("%d\n" % planted)
    return repo


def timed(cmd, shell=False):
    """Wall seconds, and CPU seconds (user + system) of the command and
    everything it waited for."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.monotonic()
    r = subprocess.run(cmd, shell=shell, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    wall = time.monotonic() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, r.stdout


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--size", type=int, default=40)
    ap.add_argument("--commits", type=int, default=3000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--keyward", default=os.path.join(ROOT, "build", "keyward"))
    ap.add_argument("--anchors", default=os.path.join(ROOT, "build", "bench", "kw_bench_scan_anchors"))
    a = ap.parse_args()
    repo = os.path.join(a.out, "repo")
    if not os.path.isdir(repo):
        generate(a.out, a.size, a.commits)
    pats = os.path.join(a.out, "anchors.txt")
    with open(pats, "wb") as f:
        f.write(subprocess.run([a.anchors], check=True, stdout=subprocess.PIPE).stdout)
    nanchors = sum(1 for _ in open(pats))
    log = "git -C '%s' log -p --all" % repo
    log0 = "git -C '%s' log -p -U0 --all" % repo
    cmds = {
        "keyward": ([a.keyward, "scan", "--git-history", "--format", "json", repo], False),
        "keyward1": ([a.keyward, "scan", "--git-history", "--threads", "1", "--format", "json",
                      repo], False),
        "rg": ("%s | rg -c -f '%s'" % (log, pats), True),
        "rg0": ("%s | rg -c -f '%s'" % (log0, pats), True),
        "git0": ("%s > /dev/null" % log0, True),
    }
    shown = {
        "keyward": "keyward scan --git-history --format json REPO",
        "keyward1": "keyward scan --git-history --threads 1 --format json REPO",
        "rg": "git -C REPO log -p --all | rg -c -f anchors.txt",
        "rg0": "git -C REPO log -p -U0 --all | rg -c -f anchors.txt",
        "git0": "git -C REPO log -p -U0 --all > /dev/null",
    }
    size = len(subprocess.run(log, shell=True, stdout=subprocess.PIPE).stdout)
    ncommits = subprocess.run(["git", "-C", repo, "rev-list", "--count", "--all"],
                              stdout=subprocess.PIPE, text=True).stdout.strip()
    wall = {k: [] for k in cmds}
    cpu = {k: [] for k in cmds}
    outputs = {}
    for _ in range(a.rounds):
        for k, (cmd, shell) in cmds.items():
            t, c, out = timed(cmd, shell)
            wall[k].append(t)
            cpu[k].append(c)
            outputs[k] = out
    planted = open(os.path.join(a.out, "planted.txt")).read().strip()
    found = outputs["keyward"].count(b'"rule":"posthog-personal-api-key"') or \
        outputs["keyward"].count(b'"rule": "posthog-personal-api-key"')
    print("repository %s: %s commits, `git log -p --all` output %.1f MB; %s keys added in "
          "history (plus the corpus's own); keyward reported %d posthog-personal-api-key "
          "findings; rg searched %d anchors (kw_bench_scan_anchors)"
          % (repo, ncommits, size / 1e6, planted, found, nanchors))
    print("rounds: %d, interleaved (each command in turn, every round); %d CPUs, load average "
          "at the end %.1f\n" % (a.rounds, os.cpu_count(), os.getloadavg()[0]))
    print("| command | wall best s | wall median s | CPU median s (user+sys, all processes) |")
    print("|---|---:|---:|---:|")
    for k in cmds:
        print("| `%s` | %.2f | %.2f | %.2f |" % (shown[k], min(wall[k]),
                                                 statistics.median(wall[k]),
                                                 statistics.median(cpu[k])))
    print()
    for kw in ("keyward", "keyward1"):
        for rg in ("rg", "rg0"):
            print("- speed of `%s` / speed of `%s`: best %.2fx, median %.2fx; CPU used %.2fx"
                  % (shown[kw], shown[rg], min(wall[rg]) / min(wall[kw]),
                     statistics.median(wall[rg]) / statistics.median(wall[kw]),
                     statistics.median(cpu[kw]) / statistics.median(cpu[rg])))


main()
