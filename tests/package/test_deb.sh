#!/usr/bin/env bash
# test_deb.sh SOURCE_DIR BUILD_DIR — the Debian package, end to end, as an
# operator meets it: build it with cpack (a build of its own, prefix /usr,
# in BUILD_DIR/package-test), install it with apt (which pulls the Depends
# dpkg-shlibdeps wrote), check what landed (binary, man pages, unit,
# configuration file), run the installed binary the way keyward.service
# does (its ExecStart, as an unprivileged user, in the state directory,
# umask 077), call /_health, create the first user, restart and check the
# key still verifies, then remove and purge and check nothing is left.
#
# Needs root (apt-get, dpkg); otherwise it reports itself skipped (exit 77).  systemd
# need not be running: the maintainer scripts start the unit only where it
# is, and the test starts the binary itself.  A keyward package this test
# did not install is never touched (skipped); one left by an interrupted
# run of this test is purged first.
set -euo pipefail
SKIP=77
src=$(cd "$1" && pwd)
work=$(cd "$2" && pwd)/package-test
state=/var/lib/keyward        # the unit's StateDirectory
# Present while a package this test installed may be on the system (outside
# /etc/keyward, which purge must be able to remove).
marker=/var/tmp/keyward-package-test.installed
# dpkg through apt, which waits for the dpkg lock another apt may hold
apt=(apt-get -y -qq -o DPkg::Lock::Timeout=600)
svc_uid=61234                  # in systemd's DynamicUser range; no passwd entry needed

say() { printf 'test_deb: %s\n' "$*"; }
fail() { say "FAIL: $*"; exit 1; }

if [ "$(id -u)" -ne 0 ]; then
  say "SKIP: needs root to install a package (dpkg -i); run as root, as CI does"
  exit $SKIP
fi
for tool in dpkg-deb dpkg-shlibdeps apt-get setpriv curl cpack; do
  command -v "$tool" >/dev/null || fail "$tool not found (scripts/deps installs what this test needs)"
done

status=$(dpkg-query -W -f='${db:Status-Abbrev}' keyward 2>/dev/null || true)
if [ -n "$status" ] && [ "${status:1:1}" != n ]; then
  if [ -e "$marker" ]; then
    say "a keyward package is left from an earlier run of this test: purging it"
    DEBIAN_FRONTEND=noninteractive "${apt[@]}" purge keyward >/dev/null
    rm -f "$marker"
  else
    say "SKIP: a keyward package is installed on this machine and this test did not install it"
    exit $SKIP
  fi
fi

server_pid=""
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  if [ -e "$marker" ]; then
    DEBIAN_FRONTEND=noninteractive "${apt[@]}" purge keyward >/dev/null 2>&1 && rm -f "$marker"
  fi
}
trap cleanup EXIT

# ---- build the package ----------------------------------------------------
say "building the package in $work"
mkdir -p "$work"
cmake -S "$src" -B "$work/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_INSTALL_PREFIX=/usr \
      -DKW_BUILD_TESTS=OFF -DKW_BUILD_BENCH=OFF >"$work/cmake.log"
cmake --build "$work/build" -j"$(nproc)" >"$work/build.log" 2>&1 || { tail -30 "$work/build.log"; fail "build"; }
rm -f "$work"/build/keyward_*.deb
(cd "$work/build" && cpack -G DEB >"$work/cpack.log" 2>&1) || { cat "$work/cpack.log"; fail "cpack"; }
deb=$(ls "$work"/build/keyward_*.deb)
say "built $(basename "$deb")"
# Read whole, then searched: `… | grep -q` under pipefail fails at random when
# grep exits on its match and the writer dies of SIGPIPE ("no prerm" once in CI).
depends=$(dpkg-deb -f "$deb" Depends)
grep -q 'libmicrohttpd' <<<"$depends" || fail "Depends lacks the shared libraries: $depends"
control=$(dpkg-deb --ctrl-tarfile "$deb" | tar -t)
for script in postinst prerm postrm; do
  grep -qx "./$script" <<<"$control" || fail "no $script in the package"
done

# ---- install --------------------------------------------------------------
say "installing with apt-get"
touch "$marker"
DEBIAN_FRONTEND=noninteractive "${apt[@]}" install --no-install-recommends "$deb" \
  >"$work/apt.log" 2>&1 || { cat "$work/apt.log"; fail "apt-get install"; }
[ "$(dpkg-query -W -f='${db:Status-Abbrev}' keyward)" = "ii " ] || fail "keyward is not installed"

# ---- what landed ----------------------------------------------------------
[ -x /usr/bin/keyward ] || fail "/usr/bin/keyward missing"
version=$(sed -n 's/#define KW_VERSION "\(.*\)"/\1/p' "$src/include/keyward/keyward.h")
[ "$(/usr/bin/keyward --version)" = "keyward $version" ] || fail "version: $(/usr/bin/keyward --version)"
unit=$(dpkg -L keyward | grep '/systemd/system/keyward.service$') || fail "no keyward.service"
conffiles=$(dpkg-query -W -f='${Conffiles}' keyward)
grep -q ' /etc/keyward/keyward.conf ' <<<"$conffiles" ||
  fail "/etc/keyward/keyward.conf is not a conffile"
pages=$(dpkg-deb -c "$deb" | grep -c '/usr/share/man/man1/keyward.*\.1\.gz$')
commands=$(/usr/bin/keyward --help | sed -n '/^commands:/,/^$/{/^  /p}' | wc -l)
[ "$pages" -eq $((commands + 1)) ] || fail "$pages man pages for $commands commands + keyward(1)"
if grep -qs 'path-exclude.*/usr/share/man' /etc/dpkg/dpkg.cfg.d/*; then
  say "man pages not checked: dpkg excludes /usr/share/man on this machine"
elif command -v man >/dev/null; then
  for page in $(dpkg -L keyward | grep '/man1/keyward.*\.1\.gz$'); do
    name=$(basename "$page" .1.gz)
    text=$(MANWIDTH=80 man -l "$page" 2>"$work/man.err") || fail "man -l $page: $(cat "$work/man.err")"
    grep -q "^NAME" <<<"$text" || fail "$page has no NAME section"
    grep -q "^SYNOPSIS" <<<"$text" || fail "$page has no SYNOPSIS section"
    [ -s "$work/man.err" ] && fail "man -l $page warned: $(cat "$work/man.err")"
    man -w "$name" >/dev/null 2>&1 || fail "man cannot find $name"
  done
  serve_page=$(MANWIDTH=80 man -l /usr/share/man/man1/keyward-serve.1.gz)
  grep -q -- '--config FILE' <<<"$serve_page" ||
    fail "keyward-serve(1) does not carry serve's --help"
  say "$pages man pages read by man -l"
else
  say "man pages not read: no man on this machine"
fi
if command -v systemd-analyze >/dev/null; then
  systemd-analyze verify "$unit" >"$work/verify.log" 2>&1 || { cat "$work/verify.log"; fail "systemd-analyze verify $unit"; }
  say "systemd-analyze verify: ok"
else
  say "unit not verified: no systemd-analyze on this machine"
fi
# postinst enabled the unit (deb-systemd-helper), whether or not systemd runs
wants=/etc/systemd/system/multi-user.target.wants/keyward.service
if command -v deb-systemd-helper >/dev/null; then
  [ -L "$wants" ] || fail "keyward.service is not enabled ($wants missing)"
fi
for hardening in DynamicUser=yes StateDirectory=keyward ProtectSystem=strict ProtectHome=yes \
                 NoNewPrivileges=yes PrivateTmp=yes PrivateDevices=yes MemoryDenyWriteExecute=yes \
                 'CapabilityBoundingSet=$' 'SystemCallFilter=@system-service' 'RestrictAddressFamilies='; do
  grep -q "^$hardening" "$unit" || fail "$unit lacks $hardening"
done

# ---- run it the way the unit does -----------------------------------------
# ExecStart as written, in WorkingDirectory (%S/keyward), as a user with no
# privilege, umask 077, in a state directory made 0700 for that user (what
# systemd does for StateDirectory=).  Only the listen address is changed,
# through the environment (as `systemctl edit keyward` would): port 0, so as
# not to collide with anything on this machine.
exec_start=$(sed -n 's/^ExecStart=//p' "$unit")
[ "$(sed -n 's/^WorkingDirectory=//p' "$unit")" = "%S/keyward" ] || fail "unexpected WorkingDirectory"
[ ! -e "$state" ] || fail "$state exists before the first start"
install -d -m 0700 -o $svc_uid -g $svc_uid "$state"

# MemoryDenyWriteExecute=yes, approximated with the kernel's own switch
# (prctl PR_SET_MDWE, Linux 6.3+) where there is one: no memory may become
# writable and executable.
mdwe_py='import ctypes, os, sys
if ctypes.CDLL(None).prctl(65, 1, 0, 0, 0) != 0: sys.exit("PR_SET_MDWE refused")
os.execv(sys.argv[1], sys.argv[1:])'
mdwe=()
if python3 -c "$mdwe_py" /bin/true 2>/dev/null; then
  mdwe=(python3 -c "$mdwe_py")
  say "running the binary with memory-deny-write-execute (PR_SET_MDWE)"
else
  say "memory-deny-write-execute not applied: this kernel has no PR_SET_MDWE"
fi

as_service() {  # execs "$@" as the service would, in the state directory
  cd "$state" && umask 077 && exec setpriv --reuid=$svc_uid --regid=$svc_uid --clear-groups \
    --no-new-privs env -i PATH=/usr/bin:/bin STATE_DIRECTORY="$state" \
    KEYWARD_LISTEN=127.0.0.1:0 "${mdwe[@]}" "$@"
}

port=""
start() {
  : >"$work/serve.out"
  # shellcheck disable=SC2086  # ExecStart is split into words as systemd does
  # (one subshell, exec'd all the way down: $! is keyward's own pid)
  (as_service $exec_start) >"$work/serve.out" 2>"$work/serve.err" &
  server_pid=$!
  for _ in $(seq 100); do
    port=$(sed -n 's|^keyward .* listening on http://127\.0\.0\.1:\([0-9]*\) .*|\1|p' "$work/serve.out")
    [ -n "$port" ] && break
    kill -0 "$server_pid" 2>/dev/null || fail "the installed keyward exited: $(cat "$work/serve.err")"
    sleep 0.1
  done
  [ -n "$port" ] || fail "no listening line: $(cat "$work/serve.out" "$work/serve.err")"
  curl -sf "http://127.0.0.1:$port/_health" | grep -q '"status":"ok"' || fail "/_health"
}
stop() {
  kill -TERM "$server_pid"
  local rc=0
  wait "$server_pid" || rc=$?
  server_pid=""
  [ "$rc" -eq 0 ] || fail "keyward serve exited $rc on SIGTERM: $(cat "$work/serve.err")"
}

# The first start reads /etc/keyward/keyward.conf as shipped (the unit names
# no other): it must be valid as it is.
start
say "installed binary serving on 127.0.0.1:$port as uid $svc_uid; /_health ok"
[ "$(stat -c %u:%a "$state/keyward.db")" = "$svc_uid:600" ] ||
  fail "the database was not created by the first start in $state, owned by the service, 0600"
# the first user, as docs/install.md has the operator do it (as the service's user)
(as_service /usr/bin/keyward init --db "$state/keyward.db" --email admin@example.com) >"$work/init.out" ||
  fail "keyward init"
key=$(grep -o 'phx_[0-9A-Za-z]*' "$work/init.out" | head -1)
[ -n "$key" ] || fail "no key from keyward init"
me() { curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $1" "http://127.0.0.1:$port/api/users/@me/"; }
[ "$(me "$key")" = 200 ] || fail "the new key does not verify"
# the scanner (Hyperscan, or PCRE2 without its JIT) under the same sandbox
printf 'token = "%s"\n' "$key" >"$state/leak.txt"
chown $svc_uid "$state/leak.txt"
rc=0; (as_service /usr/bin/keyward scan leak.txt) >"$work/scan.out" 2>&1 || rc=$?
[ "$rc" -eq 1 ] && grep -q 'leak.txt' "$work/scan.out" || fail "scan under the sandbox (exit $rc): $(cat "$work/scan.out")"
rm -f "$state/leak.txt"
stop
# The unit passes no --config: the default file is read.  An operator's edit
# (JSON logs) must show after the restart.
printf 'log-format = json\n' >>/etc/keyward/keyward.conf
start
[ "$(me "$key")" = 200 ] || fail "the key does not verify after a restart"
grep -q '"event":"start"' "$work/serve.err" || fail "/etc/keyward/keyward.conf was not read: $(cat "$work/serve.err")"
[ "$(me "phx_notakey")" = 401 ] || fail "a made-up key is not refused"
stop
say "restarted with an edited /etc/keyward/keyward.conf: read, data kept, the key still verifies"

# ---- remove, then purge ---------------------------------------------------
DEBIAN_FRONTEND=noninteractive "${apt[@]}" remove keyward >"$work/remove.log" 2>&1 ||
  { cat "$work/remove.log"; fail "apt-get remove"; }
[ ! -e /usr/bin/keyward ] || fail "/usr/bin/keyward left after remove"
[ ! -e "$unit" ] || fail "$unit left after remove"
[ -e /etc/keyward/keyward.conf ] || fail "remove (not purge) dropped the conffile"
DEBIAN_FRONTEND=noninteractive "${apt[@]}" purge keyward >"$work/purge.log" 2>&1 ||
  { cat "$work/purge.log"; fail "apt-get purge"; }
rm -f "$marker"
for gone in /etc/keyward "$state" /usr/share/man/man1/keyward.1.gz /usr/share/doc/keyward "$wants" \
            /var/lib/systemd/deb-systemd-helper-enabled/keyward.service.dsh-also \
            /var/lib/systemd/deb-systemd-helper-masked/keyward.service; do
  [ ! -e "$gone" ] || fail "$gone left after purge"
done
status=$(dpkg-query -W -f='${db:Status-Abbrev}' keyward 2>/dev/null || true)
[ -z "$status" ] || [ "${status:1:1}" = n ] || fail "dpkg still has keyward: $status"
say "removed and purged: nothing left"
echo "1 passed, 0 failed"
