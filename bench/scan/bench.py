#!/usr/bin/env python3
"""Times keyward scan / redact against ripgrep, git-secrets and secretlint
on the corpus written by gen_corpus.py, and writes a Markdown table.
Each tool runs once to warm up (page cache, JIT) and is then timed as the
best of RUNS runs.  Slow tools are timed on a slice of the tree (the first
files, SLICE_MB) and reported with that size; MB/s makes them comparable.
usage: bench.py CORPUS_DIR KEYWARD_BIN RESULTS_MD"""
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

RUNS = 3
SLICE_MB = int(os.environ.get("SLICE_MB", "10"))
HERE = os.path.dirname(os.path.abspath(__file__))

# The keyward key patterns, and all of keyward's built-in anchors as one rg
# pattern list (same shapes, no validation), for a like-for-like rg run.
ASSIGN = "[a-z0-9_.-]{0,20}[\"']?[ \\t]{0,3}(?::=|=>|=|:)[ \\t]{0,3}[\"'`]?"
RG_KEY = ["-e", r"ph[xsc]_[0-9A-Za-z]{20,54}"]
RG_ALL = RG_KEY + [
    "-e", r"(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}",
    "-e", r"gh[pousr]_[0-9A-Za-z]{36}", "-e", r"github_pat_[0-9A-Za-z_]{22}",
    "-e", r"xox[baprs]-[0-9A-Za-z-]{10}", "-e", r"[sr]k_live_[0-9A-Za-z]{20}",
    "-e", r"-----BEGIN[ A-Z0-9]{0,40}PRIVATE KEY", "-e", r"eyJ[0-9A-Za-z_-]{8}",
    "-e", "(?i)aws[a-z0-9_.-]{0,20}(?:secret|sk)" + ASSIGN + "[0-9A-Za-z/+]{40}",
    "-e", "(?i)(?:secret|passwd|password|pwd|token|api[_-]?key|apikey|access[_-]?key|auth[_-]?key|"
          "client[_-]?secret|private[_-]?key)" + ASSIGN + "[0-9A-Za-z/+_.~!@#%^&*-]{12}",
]


def tree_bytes(paths):
    return sum(os.path.getsize(p) for p in paths)


def all_files(tree):
    out = []
    for root, _, files in os.walk(tree):
        out.extend(os.path.join(root, f) for f in files)
    return sorted(out)


def timed(cmd, cwd=None, env=None, stdin=None, stdout=subprocess.DEVNULL, runs=RUNS):
    best = None
    for i in range(runs + 1):
        fin = open(stdin, "rb") if stdin else subprocess.DEVNULL
        t = time.perf_counter()
        r = subprocess.run(cmd, cwd=cwd, env=env, stdin=fin, stdout=stdout,
                           stderr=subprocess.PIPE)
        dt = time.perf_counter() - t
        if stdin:
            fin.close()
        if r.returncode not in (0, 1):
            raise RuntimeError(f"{cmd[0]} failed ({r.returncode}): {r.stderr[-400:]!r}")
        if i > 0:  # run 0 warms up
            best = dt if best is None else min(best, dt)
    return best


def main():
    corpus, keyward, results = sys.argv[1], os.path.abspath(sys.argv[2]), sys.argv[3]
    tree = os.path.join(corpus, "tree")
    log = os.path.join(corpus, "log.txt")
    files = all_files(tree)
    total = tree_bytes(files)
    mb = total / 1e6
    rows = []  # (tool, what, MB scanned, seconds, note)

    def add(tool, what, size_mb, seconds, note=""):
        rows.append((tool, what, size_mb, seconds, note))
        print(f"{tool:28s} {what:34s} {size_mb:8.1f} MB {seconds:7.3f} s {size_mb / seconds:8.1f} MB/s {note}",
              flush=True)

    add("keyward scan", "all rules, text output", mb, timed([keyward, "scan", "--no-ignore", tree]))
    add("keyward scan --threads 1", "all rules, one thread", mb,
        timed([keyward, "scan", "--no-ignore", "--threads", "1", tree]))
    add("ripgrep", "phx/phs/phc pattern only", mb, timed(["rg", "--no-ignore", "-c"] + RG_KEY + [tree]))
    add("ripgrep", "all keyward anchors (10 patterns)", mb, timed(["rg", "--no-ignore", "-c"] + RG_ALL + [tree]))
    add("keyward redact", "log.txt → /dev/null", os.path.getsize(log) / 1e6,
        timed([keyward, "redact"], stdin=log))
    add("cat", "log.txt → /dev/null (I/O floor)", os.path.getsize(log) / 1e6,
        timed(["cat"], stdin=log))

    # the slow tools: a slice of the first files
    slice_files, size = [], 0
    for f in files:
        if size >= SLICE_MB << 20:
            break
        slice_files.append(f)
        size += os.path.getsize(f)
    slice_dir = os.path.join(corpus, "slice")
    if not os.path.isdir(slice_dir):
        os.makedirs(slice_dir)
        for i, f in enumerate(slice_files):
            shutil.copyfile(f, os.path.join(slice_dir, f"f{i:05d}.py"))
    slice_mb = tree_bytes(all_files(slice_dir)) / 1e6
    add("keyward scan", f"all rules, {SLICE_MB} MB slice", slice_mb, timed([keyward, "scan", "--no-ignore", slice_dir]))

    if shutil.which("git-secrets"):
        home = tempfile.mkdtemp(prefix="kw_gs_")
        env = dict(os.environ, HOME=home, GIT_CONFIG_NOSYSTEM="1")
        subprocess.run(["git", "secrets", "--register-aws", "--global"], env=env, check=True,
                       capture_output=True)
        subprocess.run(["git", "secrets", "--add", "--global", r"ph[xsc]_[0-9A-Za-z]{20,54}"],
                       env=env, check=True, capture_output=True)
        add("git-secrets --scan", f"AWS + keyward patterns, {SLICE_MB} MB slice", slice_mb,
            timed(["git", "secrets", "--scan", "--no-index"], cwd=slice_dir, env=env,
                  runs=1))
        shutil.rmtree(home, ignore_errors=True)
    else:
        print("git-secrets not installed: skipped (apt-get install git-secrets)")

    secretlint = os.path.join(HERE, "node_modules", ".bin", "secretlint")
    if os.path.exists(secretlint):
        add("secretlint", f"preset-recommend, {SLICE_MB} MB slice", slice_mb,
            timed([secretlint, "--secretlintrc", os.path.join(HERE, ".secretlintrc.json"),
                   "--maskSecrets", "**/*"], cwd=slice_dir, runs=1))
    else:
        print("secretlint not installed: skipped (cd bench/scan && npm install)")

    by = {(r[0], r[1]): r[2] / r[3] for r in rows}
    rg_key = by[("ripgrep", "phx/phs/phc pattern only")]
    lines = [
        "# keyward scan benchmark",
        "",
        f"Generated by `bench/scan/run.sh` on {platform.machine()}, {os.cpu_count()} CPUs, "
        f"{time.strftime('%Y-%m-%d')}. Corpus: {len(files)} source-like files, {mb:.0f} MB "
        f"(plus a {os.path.getsize(log) / 1e6:.0f} MB log file for redact). Best of {RUNS} warm runs; "
        "each row includes process start-up (keyward compiles its Hyperscan database, ~40 ms).",
        "",
        "| tool | what | MB | seconds | MB/s | vs ripgrep (ph pattern) |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for tool, what, size_mb, seconds, note in rows:
        rate = size_mb / seconds
        lines.append(f"| {tool} | {what} | {size_mb:.1f} | {seconds:.3f} | {rate:.0f} | "
                     f"{rate / rg_key:.2f}× |")
    lines.append("")
    kw = by[("keyward scan", "all rules, text output")]
    lines.append(f"- keyward scan (all rules) / ripgrep (ph pattern only): **{kw / rg_key:.2f}×**")
    rg_all = by[("ripgrep", "all keyward anchors (10 patterns)")]
    lines.append(f"- keyward scan (all rules) / ripgrep (all anchors): **{kw / rg_all:.2f}×**")
    for key, label in ((("secretlint", f"preset-recommend, {SLICE_MB} MB slice"), "secretlint"),
                       (("git-secrets --scan", f"AWS + keyward patterns, {SLICE_MB} MB slice"),
                        "git-secrets")):
        if key in by:
            kw_slice = by[("keyward scan", f"all rules, {SLICE_MB} MB slice")]
            lines.append(f"- keyward scan / {label} on the same slice: **{kw_slice / by[key]:.1f}×**")
    red = [r for r in rows if r[0] == "keyward redact"][0]
    lines.append(f"- keyward redact: **{red[2] / red[3] / 1000:.2f} GB/s** (input from the page cache, "
                 "output to /dev/null)")
    lines.append("")
    os.makedirs(os.path.dirname(results), exist_ok=True)
    with open(results, "w") as f:
        f.write("\n".join(lines))
    print("\n".join(lines))


main()
