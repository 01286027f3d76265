#!/bin/sh
# Docs move with the code: every config key pxl-serve knows (-T) is
# described in pxl.cfg(5), and every option of -h is in pxl-serve(1).
src=${PXL_SRCDIR:?}
serve=${PXL_SERVE:?}
keys=$("$serve" -T | awk '{print $1}')
cfg_text=$(groff -mdoc -Tascii -P-c "$src/man/pxl.cfg.5" 2>/dev/null | col -b)
serve_text=$(groff -mdoc -Tascii -P-c "$src/man/pxl-serve.1" 2>/dev/null | col -b)
opts=$("$serve" -h | sed -n 's/^  \(-[A-Za-z]\) .*/\1/p')
n=0
total=$(( $(echo "$keys" | wc -l) + $(echo "$opts" | wc -l) + 1 ))
echo "1..$total"
for k in $keys; do
        n=$((n + 1))
        if printf '%s\n' "$cfg_text" | grep -qF -- "$k"; then
                echo "ok $n - pxl.cfg(5) documents $k"
        else
                echo "not ok $n - pxl.cfg(5) documents $k"
        fi
done
for o in $opts; do
        n=$((n + 1))
        if printf '%s\n' "$serve_text" | grep -qE -- "^ +$o([[:space:]]|\$)"; then
                echo "ok $n - pxl-serve(1) documents $o"
        else
                echo "not ok $n - pxl-serve(1) documents $o"
        fi
done
n=$((n + 1))
if "$serve" -V | grep -qE '^pxl-serve [0-9.]+ \(plugin ABI [0-9]+\.[0-9]+\)$'; then
        echo "ok $n - pxl-serve -V prints version and ABI"
else
        echo "not ok $n - pxl-serve -V prints version and ABI"
fi
