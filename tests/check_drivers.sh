#!/usr/bin/env bash
# check_drivers.sh — only the two database drivers know their libraries.
# Every stored object is written once against lib/store/db.h; a file that
# includes sqlite3.h or libpq-fe.h anywhere else in lib/ or src/ would be
# the start of a second, per-dialect copy.  The PostgreSQL driver is a few
# files (db_pg*.c) sharing db_pg.h, which alone includes libpq-fe.h, so
# db_pg.h is checked the same way: only the driver's own files include it.
# Prints each offending line and exits 1; exits 0 when there is none.
set -u
root=${1:-$(cd "$(dirname "$0")/.." && pwd)}
bad=0
while IFS=: read -r file line text; do
    case "$file:$text" in
    */lib/store/db_sqlite.c:*sqlite3.h*|*/lib/store/db_pg.h:*libpq-fe.h*|*/lib/store/db_pg*.c:*db_pg.h*) ;;
    *) echo "${file#"$root"/}:$line: $text: only lib/store/db_sqlite.c and the db_pg*.c files (through db_pg.h) may include it" >&2
       bad=1 ;;
    esac
done < <(grep -rnE '#[[:space:]]*include[[:space:]]*[<"]((sqlite3|libpq-fe)\.h|(store/)?db_pg\.h)' "$root/lib" "$root/src" "$root/include")
if [[ $bad == 0 ]]; then echo "check_drivers: sqlite3.h and libpq-fe.h only in their drivers"; fi
exit $bad
