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
# harness : framework sources : libraries
targets="utf8:pxl_utf8.c:
ws_codec:pxl_ws_codec.c pxl_utf8.c:
http:pxl_http.c:-lcrypto
json:pxl_json.c pxl_utf8.c:-ljson-c
json_build:pxl_json_build.c pxl_json.c pxl_utf8.c:-ljson-c
conf:pxl_conf.c pxl_str.c pxl_json.c pxl_log.c pxl_utf8.c:-lconfig
auth:pxl_auth.c pxl_http.c pxl_str.c pxl_json.c pxl_utf8.c:-ljwt -ljson-c -lcrypto
wire:pxl_wire.c pxl_str.c pxl_json.c pxl_utf8.c:-ljson-c"
n=$(echo "$targets" | wc -l)
echo "1..$n"
i=0
echo "$targets" | while IFS=: read -r name sources libs; do
        i=$((i + 1))
        bin=$work/fuzz_$name
        files=""
        for s in $sources; do files="$files $fw/$s"; done
        # shellcheck disable=SC2086
        if ! clang -std=gnu11 -D_GNU_SOURCE -DPXL_PLUGINDIR='"/nonexistent"' \
                -g -O1 -fsanitize=fuzzer,address,undefined \
                -fno-sanitize-recover=undefined -I"$fw" \
                "$src/tests/fuzz/fuzz_$name.c" $files $libs -o "$bin" \
                >"$work/$name.build" 2>&1; then
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
