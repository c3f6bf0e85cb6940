#!/usr/bin/env bash
# check_includes.sh — the program (src/) uses libkeyward only through its
# public API.  Every #include in a file under src/ must name a public
# header ("keyward/…", which exists in include/keyward/), a header of src/
# itself, or a system header (<…> that is not a file of lib/, include/ or
# src/).  lib/'s own headers are private: the library may change them
# without telling its callers, so the program must not depend on them.
# Prints each offending line and exits 1; exits 0 when there is none.
set -u
root=${1:-$(cd "$(dirname "$0")/.." && pwd)}
bad=0
while IFS= read -r file; do
    dir=$(dirname "$file")
    lineno=0
    while IFS= read -r line; do
        lineno=$((lineno + 1))
        [[ $line =~ ^[[:space:]]*#[[:space:]]*include[[:space:]]*([\"\<])([^\"\>]+)[\"\>] ]] || continue
        kind=${BASH_REMATCH[1]} name=${BASH_REMATCH[2]}
        ok=0
        if [[ $name == microhttpd.h ]]; then
            case ${file#"$root"/} in src/http/server.c | src/http/server_hold.c | src/http/server_internal.h) ok=1 ;; esac
        elif [[ $kind == '"' ]]; then
            if [[ $name == keyward/* ]]; then
                [[ -f $root/include/$name ]] && ok=1
            elif [[ -f $root/src/$name || -f $dir/$name ]]; then
                # a src/ header, named from src/ or beside the includer,
                # and not a path that climbs out of src/
                case "$(realpath -m "$root/src/$name") $(realpath -m "$dir/$name")" in
                *"$root/src/"*) [[ $name != *..* ]] && ok=1 ;;
                esac
            fi
        else
            # a system header must not be one of the project's own
            [[ -e $root/lib/$name || -e $root/include/$name || -e $root/src/$name ]] || ok=1
        fi
        if [[ $ok == 0 ]]; then
            echo "${file#"$root"/}:$lineno: $line: src/ may include only \"keyward/…\", src/ headers and system headers (microhttpd.h: server.c and server_hold.c only)" >&2
            bad=1
        fi
    done <"$file"
done < <(find "$root/src" -type f \( -name '*.c' -o -name '*.h' \) | sort)
if [[ $bad == 0 ]]; then echo "check_includes: every include under src/ is public, src/ or system"; fi
exit $bad
