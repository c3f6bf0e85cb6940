#!/bin/sh
# manpages.sh KEYWARD OUTDIR — writes keyward(1) and one keyward-CMD(1) per
# subcommand into OUTDIR, gzip-compressed as Debian installs them, from the built program's own help: the command
# list and summaries of `keyward --help`, the usage lines (SYNOPSIS) and
# the rest (DESCRIPTION) of `keyward CMD --help`.  The help text is the one
# source, so a man page cannot say something the program does not.
# Run at build time (cmake/install.cmake); POSIX sh, sed and gzip only.
set -eu
bin=$1
out=$2
mkdir -p "$out"
version=$("$bin" --version | sed 's/^keyward //')
title="keyward $version"

# roff-escape stdin: backslashes, minus signs (so options copy and paste as
# typed), and a leading . or ' that roff would read as a request.
esc() {
  sed -e 's/\\/\\e/g' -e 's/-/\\-/g' -e "s/^\\([.']\\)/\\\\\\&\\1/"
}

# The commands and their summaries: the lines after "commands:" up to the
# first blank line, "  NAME  summary".
commands=$("$bin" --help | sed -n '/^commands:/,/^$/{/^  /p}')

# page NAME SUMMARY HELPTEXT-FILE SEEALSO
page() {
  name=$1 summary=$2 help=$3 seealso=$4
  upper=$(printf '%s' "$name" | tr '[:lower:]' '[:upper:]')
  {
    printf '.TH %s 1 "" "%s" "keyward manual"\n' "$upper" "$title"
    printf '.SH NAME\n%s \\- %s\n' "$(printf '%s' "$name" | esc)" "$(printf '%s' "$summary" | esc)"
    # SYNOPSIS: the usage paragraph (up to the first blank line) without
    # its "usage: " prefix; DESCRIPTION: everything after it, as written.
    printf '.SH SYNOPSIS\n.nf\n'
    sed -n '1,/^$/{/^$/!p}' "$help" | sed -e 's/^usage: //' -e t -e 's/^       //' | esc
    printf '.fi\n'
    if [ -n "$(sed -n '/^$/,$p' "$help" | sed '/^$/d')" ]; then
      printf '.SH DESCRIPTION\n.nf\n'
      sed -n '/^$/,$p' "$help" | sed '1d' | esc
      printf '.fi\n'
    fi
    printf '.SH SEE ALSO\n%s\n' "$seealso"
  } | gzip -9n >"$out/$name.1.gz"
}

tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
all=""
for cmd in $(printf '%s\n' "$commands" | awk '{print $1}'); do
  all="$all${all:+, }\\fBkeyward\\-$cmd\\fR(1)"
done

"$bin" --help >"$tmp"
page keyward "self-hosted API-key service and secret-leak toolkit" "$tmp" "$all"
printf '%s\n' "$commands" | while read -r cmd summary; do
  "$bin" "$cmd" --help >"$tmp"
  page "keyward-$cmd" "$summary" "$tmp" "\\fBkeyward\\fR(1)"
done
