#!/usr/bin/env bash
# check_handler_table.sh — a route without a handler, or without its
# entry in the OpenAPI document, is a build error.  Compiles
# src/http/dispatch.c and src/http/openapi.c as they are (they must
# compile), then each once with one route's line removed (it must not,
# and must say that the route id is not handled), so the completeness
# checks in handler_of() and success_of() cannot silently stop working.
# Usage: check_handler_table.sh SOURCE_DIR C_COMPILER [extra compiler flags…]
set -u
root=$1 cc=$2
shift 2
flags=(-std=c11 -D_GNU_SOURCE -fsyntax-only -I"$root/include" -I"$root/src" "$@")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
for src in "$root/src/http/dispatch.c" "$root/src/http/openapi.c"; do
name=$(basename "$src")
case $name in
dispatch.c) pattern='^    case KW_ROUTE_[A-Z0-9_]*: return kw_h_' ;;
*) pattern='^    case KW_ROUTE_[A-Z0-9_]*: return (struct success)' ;;
esac
if ! "$cc" "${flags[@]}" -x c "$src" 2>"$tmp/full.err"; then
    echo "$name does not compile as it is:" >&2
    cat "$tmp/full.err" >&2
    exit 1
fi
# Remove a route's case (the first and the last) and expect a refusal naming it.
for which in first last; do
    line=$(grep -n "$pattern" "$src" | { [[ $which == first ]] && head -1 || tail -1; })
    [[ -n $line ]] || { echo "no handler case found in $src" >&2; exit 1; }
    n=${line%%:*}
    id=$(sed -n "${n}p" "$src" | sed 's/^ *case \(KW_ROUTE_[A-Z0-9_]*\):.*/\1/')
    sed "${n}d" "$src" >"$tmp/$name"
    if "$cc" "${flags[@]}" -I"$root/src/http" -x c "$tmp/$name" 2>"$tmp/cut.err"; then
        echo "$name without the case of $id still compiles" >&2
        fail=1
    elif ! grep -q "$id" "$tmp/cut.err"; then
        echo "$name without the case of $id fails, but not by naming it:" >&2
        cat "$tmp/cut.err" >&2
        fail=1
    else
        echo "$name without the case of $id: build error, as required"
    fi
done
done
exit $fail
