#!/bin/sh
# test_scaffold - pxl as a user gets it: `make install` into a scratch
# DESTDIR, the installed files, the installed pxl-new making an app, and
# that app building against the installed pxl (found with pkg-config),
# passing its own `make check` and serving a request. TAP output.
#
# Needs PXL_BUILDDIR (a configured and built pxl tree); make check sets it.
# The installed programs are run with LD_LIBRARY_PATH pointing into the
# DESTDIR (their RUNPATH names the real libdir), and a copy of pxl.pc with
# the DESTDIR prepended to its prefix stands in for the installed one.
set -u

. "${PXL_SRCDIR:?}/tests/tap.sh"
finish() {
        echo "1..$n"
        [ "$failed" -eq 0 ]
        exit
}
# step NAME CMD...: run CMD with its output in a log; on failure show the
# end of the log. Returns CMD's status.
step() {
        name=$1
        shift
        if "$@" >"$tmp/step.log" 2>&1; then
                ok "$name"
                return 0
        fi
        not_ok "$name"
        tail -n 40 "$tmp/step.log" | diag
        return 1
}
# A step later steps cannot do without.
must() {
        step "$@" || finish
}

if [ -z "${PXL_BUILDDIR:-}" ] || [ ! -f "$PXL_BUILDDIR/Makefile" ]; then
        echo "Bail out! PXL_BUILDDIR is not a built pxl tree (run through make check)"
        exit 1
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/pxl-scaffold.XXXXXX") || exit 1
pid=
cleanup() {
        [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null
        rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' HUP INT TERM

# This runs inside pxl's own make check: nothing of that make (jobserver,
# command-line variables) or of its test environment may leak into the
# builds below.
unset MAKEFLAGS MFLAGS MAKELEVEL MAKEOVERRIDES PXL_SERVE PXL_PLUGIN_PATH \
        PXL_TEST_PLUGINS PXL_SKELETON PKG_CONFIG_PATH CFLAGS LDFLAGS CPPFLAGS
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:halt_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

D=$tmp/dest
must "make install DESTDIR=..." \
        timeout 120 make -C "$PXL_BUILDDIR" install DESTDIR="$D"

# The install directories, as that build's Makefile computes them.
cat >"$tmp/dirs.mk" <<MK
include Makefile
pxl-print-dirs:
	@echo "prefix='\$(prefix)'"
	@echo "exec_prefix='\$(exec_prefix)'"
	@echo "bindir='\$(bindir)'"
	@echo "libdir='\$(libdir)'"
	@echo "includedir='\$(includedir)'"
	@echo "pkglibdir='\$(pkglibdir)'"
	@echo "pkgdatadir='\$(pkgdatadir)'"
	@echo "mandir='\$(mandir)'"
MK
must "read the install directories" \
        sh -c 'make -s -C "$1" -f "$2" pxl-print-dirs >"$3"' sh \
        "$PXL_BUILDDIR" "$tmp/dirs.mk" "$tmp/dirs.sh"
# shellcheck disable=SC1091,SC2154 # sets prefix, bindir, libdir, ...
. "$tmp/dirs.sh"
skel=$D$pkgdatadir/skeleton

missing=
for f in "$bindir/pxl-serve" "$bindir/pxl-new" "$bindir/pxl-jobs" \
        "$includedir/pxl/pxl.h" "$libdir/libpxl.so" "$libdir/pkgconfig/pxl.pc" \
        "$pkglibdir/plugins/echo.so" "$mandir/man1/pxl-serve.1" \
        "$mandir/man1/pxl-new.1" "$mandir/man1/pxl-jobs.1" \
        "$mandir/man3/pxl-plugin.3" \
        "$mandir/man5/pxl.cfg.5" "$pkgdatadir/skeleton/configure.ac" \
        "$pkgdatadir/skeleton/Makefile.am" "$pkgdatadir/skeleton/app.cfg" \
        "$pkgdatadir/skeleton/README.md" \
        "$pkgdatadir/skeleton/controllers/@APP@.c" \
        "$pkgdatadir/skeleton/migrations/001_notes.sql" \
        "$pkgdatadir/skeleton/tests/run.sh" \
        "$pkgdatadir/skeleton/web/index.html"; do
        [ -e "$D$f" ] || missing="$missing $f"
done
for f in "$bindir/pxl-serve" "$bindir/pxl-new" "$bindir/pxl-jobs"; do
        [ -x "$D$f" ] || missing="$missing $f(not executable)"
done
if [ -z "$missing" ]; then
        ok "installed files are in place"
else
        not_ok "installed files are in place"
        echo "# missing:$missing"
fi

if grep -F "$pkgdatadir/skeleton" "$D$bindir/pxl-new" >/dev/null &&
        ! grep '@pkgdatadir@\|@libdir@' "$D$bindir/pxl-new" >/dev/null; then
        ok "pxl-new has the installed skeleton directory written in"
else
        not_ok "pxl-new has the installed skeleton directory written in"
        grep -n 'skeleton' "$D$bindir/pxl-new" | diag
fi

# pxl.pc as installed names the real prefix; the copy points into DESTDIR.
pc=$D$libdir/pkgconfig/pxl.pc
got=$(PKG_CONFIG_PATH=$D$libdir/pkgconfig pkg-config --variable=prefix pxl)
if [ "$got" = "$prefix" ]; then
        ok "pxl.pc names the configured prefix"
else
        not_ok "pxl.pc names the configured prefix"
        echo "# got '$got', want '$prefix'"
fi
mkdir -p "$tmp/pkgconfig"
sed -E "s#^(prefix|exec_prefix|libdir|includedir)=/#\1=$D/#" "$pc" \
        >"$tmp/pkgconfig/pxl.pc"
export PKG_CONFIG_PATH="$tmp/pkgconfig"
export LD_LIBRARY_PATH="$D$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
cflags=$(pkg-config --cflags pxl 2>&1)
libs=$(pkg-config --libs pxl 2>&1)
plugindir=$(pkg-config --variable=plugindir pxl 2>&1)
abi=$(pkg-config --variable=abi pxl 2>&1)
case " $cflags | $libs" in
*" -I$D$includedir "*"| "*"-L$D$libdir -lpxl"*) ok "pkg-config --cflags --libs pxl" ;;
*)
        not_ok "pkg-config --cflags --libs pxl"
        echo "# cflags: $cflags"
        echo "# libs: $libs"
        ;;
esac
if [ "$plugindir" = "$D$pkglibdir/plugins" ] && [ -n "$abi" ]; then
        ok "pxl.pc sets plugindir and abi"
else
        not_ok "pxl.pc sets plugindir and abi"
        echo "# plugindir '$plugindir' (want '$D$pkglibdir/plugins'), abi '$abi'"
fi
step "installed pxl-serve runs (-V)" "$D$bindir/pxl-serve" -V

# pxl-new, run from the DESTDIR: PXL_SKELETON points it at the installed
# templates there (its built-in path is the real, not yet populated, one).
pxlnew() {
        PXL_SKELETON=$skel "$D$bindir/pxl-new" "$@"
}
mkdir "$tmp/work"
cd "$tmp/work" || finish
step "pxl-new -h prints the usage" sh -c '"$@" | grep "usage: pxl-new"' sh \
        env PXL_SKELETON="$skel" "$D$bindir/pxl-new" -h
must "pxl-new demo" pxlnew demo
left=$(grep -rl '@APP@' demo; find demo -name '*@APP@*')
if [ -f demo/controllers/demo.c ] && [ -f demo/.gitignore ] &&
        [ -f demo/migrations/001_notes.sql ] &&
        [ -x demo/tests/run.sh ] && [ -z "$left" ] &&
        grep -F 'AC_INIT([demo]' demo/configure.ac >/dev/null; then
        ok "pxl-new substitutes the name in file names and contents"
else
        not_ok "pxl-new substitutes the name in file names and contents"
        (cd demo && find . -type f) | diag
        [ -z "$left" ] || echo "# left @APP@ in: $left"
fi
for bad in Demo 1demo de-mo int pxlfoo; do
        if pxlnew "$bad" "bad_$bad" >/dev/null 2>&1 || [ -e "bad_$bad" ]; then
                not_ok "pxl-new refuses the name $bad"
        else
                ok "pxl-new refuses the name $bad"
        fi
done
# An app called like a bundled plugin would install over its .so: every
# plugin installed with pxl is refused, with exit 1 and a message.
bundled=
for f in "$D$pkglibdir"/plugins/*.so; do
        [ -f "$f" ] || continue
        f=${f##*/}
        bundled="$bundled${bundled:+ }${f%.so}"
done
if [ -n "$bundled" ]; then
        ok "bundled plugins installed: $bundled"
else
        not_ok "bundled plugins installed"
fi
for p in $bundled; do
        pxlnew "$p" >"$tmp/bundled.out" 2>&1
        rc=$?
        if [ "$rc" -eq 1 ] && [ ! -e "$p" ] &&
                grep -F "bad name \"$p\": pxl bundles a plugin" \
                        "$tmp/bundled.out" >/dev/null; then
                ok "pxl-new refuses the bundled plugin's name $p"
        else
                not_ok "pxl-new refuses the bundled plugin's name $p (exit $rc)"
                diag "$tmp/bundled.out"
        fi
        if grep -Fx ".Ql $p" "$D$mandir/man1/pxl-new.1" >/dev/null ||
                grep -Ex "\.Ql $p [,:]" "$D$mandir/man1/pxl-new.1" >/dev/null; then
                ok "pxl-new(1) names the bundled plugin $p"
        else
                not_ok "pxl-new(1) names the bundled plugin $p"
        fi
done
before=$(cat demo/app.cfg)
if pxlnew other demo >"$tmp/refuse.out" 2>&1; then
        not_ok "pxl-new refuses a non-empty directory"
elif [ "$(cat demo/app.cfg)" != "$before" ] || [ -e demo/controllers/other.c ]; then
        not_ok "pxl-new refuses a non-empty directory (but wrote into it)"
else
        ok "pxl-new refuses a non-empty directory"
fi
pxlnew usage_only a b >/dev/null 2>&1
if [ $? -eq 2 ] && [ ! -e usage_only ]; then
        ok "pxl-new exits 2 on a usage error"
else
        not_ok "pxl-new exits 2 on a usage error"
fi

# The app, built as its README says, against the installed pxl. Its
# app.cfg loads the bundled system plugin by name, which the installed
# pxl-serve looks for in the real plugin directory: point it into DESTDIR.
export PXL_PLUGIN_PATH="$D$pkglibdir/plugins"
# The installed client library, where pxl-serve would find it installed.
export PXL_JS="$D$pkgdatadir/js/pxl.js"
cd demo || finish
must "app: autoreconf -fi" autoreconf -fi
# configure looks for pxl-serve in pxl.pc's exec_prefix/bin; only a pxl
# configured with another --bindir needs PXL_SERVE.
if [ "$bindir" = "$exec_prefix/bin" ]; then
        must "app: ./configure" ./configure
else
        must "app: ./configure" ./configure PXL_SERVE="$D$bindir/pxl-serve"
fi
if grep -Fx "PXL_SERVE = $D$bindir/pxl-serve" Makefile >/dev/null &&
        grep -Fx "plugindir = $D$pkglibdir/plugins" Makefile >/dev/null; then
        ok "app: configure finds the installed pxl-serve and plugindir"
else
        not_ok "app: configure finds the installed pxl-serve and plugindir"
        grep '^PXL_SERVE =\|^plugindir =' Makefile | diag
fi
must "app: make" make
if step "app: make check" timeout 60 make check; then
        :
else
        for f in tests/*.log; do
                [ -f "$f" ] && diag "$f"
        done
fi
# make check reports each check of tests/run.sh (a TAP driver), not one
# result for the whole script.
checks=$(grep -cE '^(not )?ok [0-9]' tests/run.log 2>/dev/null)
results=$(grep -c '^:test-result: ' tests/run.trs 2>/dev/null)
if [ "${checks:-0}" -gt 1 ] && [ "$results" = "$checks" ]; then
        ok "app: make check reports each of its $checks checks"
else
        not_ok "app: make check reports each of its checks"
        echo "# tests/run.log has ${checks:-no} checks, tests/run.trs ${results:-no} results"
fi
step "app: pxl-serve -t app.cfg" "$D$bindir/pxl-serve" -t app.cfg

# serve LOG ARGS...: start the installed pxl-serve with ARGS (on port 0,
# -p 0) in the background as $pid; $port is where it listens, or empty
# when it did not within 15 s.
serve() {
        log=$1
        shift
        : >"$log"
        "$D$bindir/pxl-serve" -p 0 "$@" 2>"$log" &
        pid=$!
        port=
        tries=0
        while [ -z "$port" ] && [ "$tries" -lt 150 ] &&
                kill -0 "$pid" 2>/dev/null; do
                port=$(sed -n 's|.*listening on [^ ]*:\([0-9][0-9]*\)/.*|\1|p' \
                        "$log")
                [ -n "$port" ] || sleep 0.1
                tries=$((tries + 1))
        done
}

# Serve the app's own app.cfg (-p 0: a free port) and send requests.
serve "$tmp/server.log" app.cfg
if [ -n "$port" ]; then
        ok "app: pxl-serve app.cfg listens (port $port)"
        # The page (static) and the client library it imports.
        for p in / /pxl.js; do
                if got=$(python3 -c 'import sys, urllib.request
r = urllib.request.urlopen(sys.argv[1], timeout=20)
sys.stdout.write("%d %s\n" % (r.status, r.headers["Content-Type"]))
sys.stdout.write(r.read().decode())' "http://127.0.0.1:$port$p" 2>&1) &&
                        case $p in
                        /) printf '%s\n' "$got" | head -n 1 | grep -q '^200 text/html' &&
                                printf '%s\n' "$got" | grep -q '<title>demo</title>' &&
                                printf '%s\n' "$got" | grep -q 'from "/pxl.js"' ;;
                        *) printf '%s\n' "$got" | head -n 1 | grep -q '^200 text/javascript' &&
                                printf '%s\n' "$got" | grep -q 'export function connect' ;;
                        esac; then
                        ok "app: GET $p (the page and pxl.js, served by the app)"
                else
                        not_ok "app: GET $p (the page and pxl.js, served by the app)"
                        printf '%s\n' "$got" | head -n 5 | diag
                fi
        done
        want='{"type":"demo","action":"ping","response":"pong","requestId":7}'
        got=$(timeout 20 tests/ws_request 127.0.0.1 "$port" /ws \
                '{"type":"demo","action":"ping","requestId":7}' 2>&1)
        if [ "$got" = "$want" ]; then
                ok "app: demo/ping answers pong"
        else
                not_ok "app: demo/ping answers pong"
                echo "# got:  $got"
                echo "# want: $want"
        fi
        # The skeleton's query: the row its migration made, from demo.db.
        want='{"type":"demo","action":"notes","response":[{"id":1,"text":"Welcome to demo"}],"requestId":8}'
        got=$(timeout 20 tests/ws_request 127.0.0.1 "$port" /ws \
                '{"type":"demo","action":"notes","data":{"limit":3},"requestId":8}' 2>&1)
        if [ "$got" = "$want" ]; then
                ok "app: demo/notes answers with the migrated row"
        else
                not_ok "app: demo/notes answers with the migrated row"
                echo "# got:  $got"
                echo "# want: $want"
        fi
        got=$(timeout 20 tests/ws_request 127.0.0.1 "$port" /ws \
                '{"type":"system","action":"joinRoom","data":{"roomName":"lobby"},"requestId":9}' 2>&1)
        case $got in
        '{"type":"system","action":"joinRoom","response":{"success":true,'*'"requestId":9}')
                ok "app: system/joinRoom works (app.cfg loads the bundled system plugin)"
                ;;
        *)
                not_ok "app: system/joinRoom works (app.cfg loads the bundled system plugin)"
                echo "# got:  $got"
                ;;
        esac
        if grep -F 'migration applied: 001_notes.sql' "$tmp/server.log" \
                >/dev/null; then
                ok "app: pxl-serve applied the migration before serving"
        else
                not_ok "app: pxl-serve applied the migration before serving"
        fi
        kill "$pid"
        if wait "$pid"; then
                ok "app: pxl-serve stops cleanly"
        else
                not_ok "app: pxl-serve stops cleanly"
        fi
else
        not_ok "app: pxl-serve app.cfg listens"
fi
pid=
if grep -E 'level=err|Sanitizer|runtime error' "$tmp/server.log" >/dev/null ||
        [ -z "$port" ]; then
        not_ok "app: server log has no errors"
        diag "$tmp/server.log"
else
        ok "app: server log has no errors"
fi

# The installed bench.cfg serves what pxl-bench drives (system and bench).
serve "$tmp/bench-server.log" "$D$pkgdatadir/bench.cfg"
if [ -n "$port" ] &&
        "$D$bindir/pxl-bench" -p "$port" -c 2 -k 2 -t 1 echo \
                >"$tmp/bench.out" 2>&1 &&
        grep '^RESULT .*"errors":0[,}]' "$tmp/bench.out" >/dev/null; then
        ok "installed bench.cfg: pxl-bench echo runs against it without errors"
else
        not_ok "installed bench.cfg: pxl-bench echo runs against it without errors"
        diag "$tmp/bench-server.log"
        [ -f "$tmp/bench.out" ] && diag "$tmp/bench.out"
fi
[ -n "$pid" ] && kill "$pid" && wait "$pid"
pid=

cd / || true
finish
