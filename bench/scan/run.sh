#!/bin/sh
# bench/scan/run.sh [SIZE_MB] — benchmark keyward scan/redact against
# ripgrep, git-secrets and secretlint; writes bench/results/scan.md.
#   SIZE_MB   corpus size (default 500; 50 for a quick run)
#   KEYWARD   the binary (default build/keyward)
#   SLICE_MB  size of the slice given to the slow tools (default 20)
# The corpus goes to bench/corpus/scan-<SIZE_MB>/ (gitignored) and is reused.
# secretlint is installed into bench/scan/node_modules (gitignored) when npm
# is available; git-secrets comes from the Debian package of that name.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
size=${1:-500}
keyward=${KEYWARD:-$root/build/keyward}
corpus=$root/bench/corpus/scan-$size
[ -x "$keyward" ] || { echo "build keyward first (cmake --build build)" >&2; exit 2; }
command -v rg >/dev/null || { echo "ripgrep (rg) is required" >&2; exit 2; }
if [ ! -f "$corpus/log.txt" ]; then
    echo "generating $size MB corpus in $corpus"
    python3 "$here/gen_corpus.py" "$corpus" "$size"
fi
if [ ! -x "$here/node_modules/.bin/secretlint" ] && command -v npm >/dev/null; then
    (cd "$here" && npm install --no-audit --no-fund --no-package-lock >/dev/null 2>&1) ||
        echo "npm install failed: secretlint will be skipped" >&2
fi
python3 "$here/bench.py" "$corpus" "$keyward" "$root/bench/results/scan.md"
