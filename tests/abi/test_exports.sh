#!/bin/sh
# test_exports - pxl.h is the ABI. libpxl.so exports exactly the functions
# pxl.h declares (internal functions are not linkable by plugins), and
# pxl-serve exports the same functions to the plugins it loads, which bind
# their pxl.h calls to it, the copy of the runtime it runs, never to the
# libpxl.so a plugin linked with -lpxl brings along. TAP; reads the built
# files (nm -D, LD_DEBUG=bindings) and builds nothing.
src=${PXL_SRCDIR:?}
build=${PXL_BUILDDIR:?}
serve=${PXL_SERVE:-$build/framework/pxl-serve}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/pxl-exports.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT TERM
LC_ALL=C
export LC_ALL
. "${PXL_SRCDIR:?}/tests/tap.sh"
# diff_sets WANT GOT: "# missing: NAME" / "# extra: NAME" lines, if any.
diff_sets() {
        comm -23 "$1" "$2" | sed 's/^/# missing: /'
        comm -13 "$1" "$2" | sed 's/^/# extra: /'
}
echo "1..6"

# 1. What pxl.h declares, as the build generates its export list.
header=$src/framework/pxl/pxl.h
sh "$src/scripts/pxl-symbols" "$header" >"$tmp/want" 2>"$tmp/err"
count=$(grep -c . "$tmp/want")
if [ "$count" -ge 50 ] && ! grep -qv '^pxl_[a-z0-9_]*$' "$tmp/want"; then
        ok "scripts/pxl-symbols finds $count functions in pxl.h"
else
        not_ok "scripts/pxl-symbols finds the functions of pxl.h ($count)"
        sed 's/^/# /' "$tmp/err" "$tmp/want" | head -20
fi

# 2. The same functions as the compiler sees them declared there
# (GCC's -aux-info writes one prototype a line, with the file it is in).
cflags=$(pkg-config --cflags json-c libconfig 2>&1)
printf '#include "pxl/pxl.h"\n' >"$tmp/h.c"
# shellcheck disable=SC2086
if gcc -fsyntax-only -aux-info "$tmp/aux" -I"$src/framework" $cflags \
        "$tmp/h.c" >"$tmp/err" 2>&1; then
        grep -F 'pxl/pxl.h:' "$tmp/aux" | sed 's|^/\*[^*]*\*/ *||' |
                grep -o '^[^(]*' | grep -o 'pxl_[A-Za-z0-9_]* *$' |
                tr -d ' ' | sort -u >"$tmp/cc"
        if [ -s "$tmp/cc" ] && cmp -s "$tmp/want" "$tmp/cc"; then
                ok "the compiler sees the same $count functions declared in pxl.h"
        else
                not_ok "the compiler sees the functions scripts/pxl-symbols finds in pxl.h"
                diff_sets "$tmp/cc" "$tmp/want"
        fi
else
        not_ok "gcc -aux-info reads pxl.h"
        sed 's/^/# /' "$tmp/err" | head -20
fi

# 3. libpxl.so: every defined dynamic symbol, functions and data alike.
dlname=$(sed -n "s/^dlname='\(.*\)'$/\1/p" "$build/framework/libpxl.la")
lib=$build/framework/.libs/$dlname
if [ -n "$dlname" ] && nm -D --defined-only "$lib" >"$tmp/nm" 2>"$tmp/err"; then
        awk '{print $NF}' "$tmp/nm" | sort -u >"$tmp/lib"
        if cmp -s "$tmp/want" "$tmp/lib"; then
                ok "libpxl.so exports exactly the $count functions of pxl.h"
        else
                not_ok "libpxl.so exports exactly the functions of pxl.h"
                diff_sets "$tmp/want" "$tmp/lib"
        fi
else
        not_ok "nm -D reads libpxl.so ($lib)"
        sed 's/^/# /' "$tmp/err" | head -5
fi

# 4. pxl-serve: the same pxl_ functions, and no other pxl_ symbol (what
# else it exports is the toolchain's: _IO_stdin_used, sanitizer hooks).
if nm -D --defined-only "$serve" >"$tmp/nm" 2>"$tmp/err"; then
        awk '{print $NF}' "$tmp/nm" | grep -i '^pxl_' | sort -u >"$tmp/serve"
        if cmp -s "$tmp/want" "$tmp/serve"; then
                ok "pxl-serve exports exactly the $count functions of pxl.h"
        else
                not_ok "pxl-serve exports exactly the functions of pxl.h"
                diff_sets "$tmp/want" "$tmp/serve"
        fi
else
        not_ok "nm -D reads pxl-serve ($serve)"
        sed 's/^/# /' "$tmp/err" | head -5
fi

# 5. The plugins of this tree call nothing else.
: >"$tmp/calls"
plugins=$(ls "$build"/plugins/*/.libs/*.so "$build"/tests/plugins/.libs/*.so 2>/dev/null)
for p in $plugins; do
        nm -D --undefined-only "$p" | awk '{print $NF}' | grep '^pxl_' |
                sed "s|\$| ${p#"$build"/}|" >>"$tmp/calls"
done
bad=$(awk 'NR == FNR {want[$1] = 1; next} !($1 in want)' "$tmp/want" "$tmp/calls")
nplugins=$(printf '%s\n' "$plugins" | grep -c .)
if [ "$nplugins" -gt 0 ] && [ -z "$bad" ]; then
        ok "the $nplugins plugins built here call only pxl.h functions"
else
        not_ok "the $nplugins plugins built here call only pxl.h functions"
        printf '%s\n' "$bad" | sed 's/^/# not public: /'
fi

# 6. At run time: pxl-serve -t loads plugins (RTLD_NOW binds every call
# then); each binding of a pxl.h function, from a plugin or from the
# libpxl.so a plugin brings along, must go to the executable, and nothing
# may bind to libpxl.so.
cat >"$tmp/app.cfg" <<CFG
name = "exports";
listen = { host = "127.0.0.1"; port = 0; };
plugins = ( "system", "chat", "echo", "bench", "hello" );
CFG
LD_DEBUG=bindings LD_DEBUG_OUTPUT=$tmp/ld "$serve" -t "$tmp/app.cfg" \
        >"$tmp/out" 2>&1
rc=$?
# "binding file FROM [0] to TO [0]: normal symbol `NAME' [VERSION]"
q="'"
cat "$tmp"/ld.* 2>/dev/null |
        sed -n "s/.*binding file \([^ ]*\) \[[0-9]*\] to \([^ ]*\) \[[0-9]*\]: normal symbol \`\([^$q]*\)$q.*/\1 \2 \3/p" |
        sort -u >"$tmp/bindings"
serve_real=$(readlink -f "$serve")
# Every object named, with its real path: "NAME REALPATH".
awk '{print $1; print $2}' "$tmp/bindings" | sort -u | while read -r f; do
        echo "$f $(readlink -f "$f")"
done >"$tmp/paths"
awk -v s="$serve_real" '
        FILENAME == ARGV[1] { want[$1] = 1; next }
        FILENAME == ARGV[2] { real[$1] = $2; next }
        real[$1] == s { next }
        ($3 in want) { n++ }
        ($3 in want) && real[$2] != s { print "not to pxl-serve: " $0; next }
        real[$2] ~ /\/libpxl\.so[^\/]*$/ { print "to libpxl.so: " $0 }
        END { print n + 0 >"/dev/stderr" }' \
        "$tmp/want" "$tmp/paths" "$tmp/bindings" >"$tmp/wrong" 2>"$tmp/nbind"
nbind=$(cat "$tmp/nbind")
if [ "$rc" -eq 0 ] && [ "$nbind" -gt 0 ] && [ ! -s "$tmp/wrong" ]; then
        ok "pxl-serve -t: all $nbind bindings of pxl.h functions go to pxl-serve"
else
        not_ok "pxl-serve -t: all bindings of pxl.h functions go to pxl-serve ($nbind, exit $rc)"
        sed 's/^/# /' "$tmp/out" | head -10
        head -20 "$tmp/wrong" | sed 's/^/# /'
fi
if grep -q 'libpxl\.so' "$tmp/paths"; then
        echo "# libpxl.so was mapped too (the plugins' DT_NEEDED libpxl.so.0)"
fi

echo "# $failed of $n failed"
[ "$failed" -eq 0 ]
