#!/bin/sh
# Build every libFuzzer harness with clang (ASan + UBSan) and run each on
# a scratch copy of its seed corpus for PXL_FUZZ_SECONDS (default 10).
# TAP: one case per harness; a crash, leak or sanitizer report fails it.
src=${PXL_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
secs=${PXL_FUZZ_SECONDS:-10}
work=$(mktemp -d)
LSAN_OPTIONS=suppressions=$src/tests/lsan.supp
export LSAN_OPTIONS
trap 'rm -rf "$work"' EXIT
fw=$src/framework
# Every source of libpxl, as framework/include.am lists them for its
# convenience library (the programs, framework/bin/, are not among them).
libpxl=$(sed -n '/^framework_libpxl_internal_la_SOURCES/,/^[^[:space:]]/p' \
        "$fw/include.am" | grep -o 'framework/[a-z0-9_]*\.c' | sed 's|framework/||')
# harness : framework sources ("libpxl": all of them) : libraries : plugins
# (each plugin's source is compiled alone, its pxl_plugin descriptor
# renamed pxl_plugin_NAME, so that several can share one binary)
targets="utf8:pxl_utf8.c::
ws_codec:pxl_ws_codec.c pxl_utf8.c::
http:pxl_http.c:-lcrypto:
json:pxl_json.c pxl_utf8.c:-ljson-c:
json_build:pxl_json_build.c pxl_json.c pxl_utf8.c:-ljson-c:
conf:pxl_conf.c pxl_str.c pxl_json.c pxl_json_build.c pxl_cron.c pxl_allow.c pxl_log.c pxl_utf8.c:-lconfig -ljson-c:
auth:pxl_auth.c pxl_http.c pxl_str.c pxl_json.c pxl_utf8.c:-ljwt -ljson-c -lcrypto:
wire:pxl_wire.c pxl_str.c pxl_json.c pxl_utf8.c:-ljson-c:
cron:pxl_cron.c::
urlpath:pxl_urlpath.c::
conn:libpxl:-levent_openssl -levent -lssl -lcrypto -lhiredis -ljson-c -ljwt -lconfig -lpq -lsqlite3 -lpthread -ldl:system bench chat echo"
fuzzcc() {
        clang -std=gnu11 -D_GNU_SOURCE -DPXL_PLUGINDIR='"/nonexistent"' \
                -DPXL_JSDIR='"/nonexistent"' \
                -g -O1 -fno-sanitize-recover=undefined -I"$fw" \
                $(pkg-config --cflags libpq) "$@"
}
n=$(echo "$targets" | wc -l)
echo "1..$n"
i=0
echo "$targets" | while IFS=: read -r name sources libs plugins; do
        i=$((i + 1))
        bin=$work/fuzz_$name
        files=""
        [ "$sources" = libpxl ] && sources=$libpxl
        for s in $sources; do files="$files $fw/$s"; done
        built=true
        for p in $plugins; do
                fuzzcc -fsanitize=fuzzer-no-link,address,undefined \
                        -Dpxl_plugin="pxl_plugin_$p" -c \
                        "$src/plugins/$p/$p.c" -o "$work/plugin_$p.o" \
                        >>"$work/$name.build" 2>&1 || built=false
                files="$files $work/plugin_$p.o"
        done
        # shellcheck disable=SC2086
        if ! $built || ! fuzzcc -fsanitize=fuzzer,address,undefined \
                "$src/tests/fuzz/fuzz_$name.c" $files $libs -o "$bin" \
                >>"$work/$name.build" 2>&1; then
                echo "not ok $i - fuzz_$name builds"
                sed 's/^/# /' "$work/$name.build" | head -20
                continue
        fi
        mkdir -p "$work/corpus_$name"
        cp "$src/tests/fuzz/corpus/$name/"* "$work/corpus_$name/" 2>/dev/null
        if "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
                -artifact_prefix="$work/" "$work/corpus_$name" \
                >"$work/$name.log" 2>&1; then
                runs=$(grep -o 'Done [0-9]* runs' "$work/$name.log" | tail -1)
                echo "ok $i - fuzz_$name for ${secs}s (${runs:-no count})"
        else
                echo "not ok $i - fuzz_$name for ${secs}s"
                grep -E 'ERROR|SUMMARY|Test unit written|runtime error' \
                        "$work/$name.log" | head -20 | sed 's/^/# /'
                # The work dir goes away: keep the input in the log.
                for a in "$work"/crash-* "$work"/leak-* "$work"/timeout-* \
                        "$work"/oom-*; do
                        [ -f "$a" ] && echo "# input (base64): $(base64 -w0 "$a")"
                done
        fi
done
