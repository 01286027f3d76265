#!/bin/sh
# Keeps tests/bench/run working: one short run of every scenario against
# both servers (of the queue, queue2: 2 workers each side), on the build
# under test (TAP; no performance is judged).
src=${PXL_SRCDIR:?}
build=${PXL_BUILDDIR:?}
echo "1..2"
out=$(mktemp)
trap 'rm -f "$out"' EXIT
if "$src/tests/bench/run" --smoke --no-build --builddir "$build" >"$out" 2>&1; then
        echo "ok 1 - tests/bench/run --smoke runs every scenario on both servers"
else
        echo "not ok 1 - tests/bench/run --smoke runs every scenario on both servers"
        tail -n 30 "$out" | sed 's/^/# /'
fi
if grep -q '^BENCH {' "$out" && [ "$(grep -c '^[a-z0-9]* .* smoke run: not judged$' "$out")" -eq 9 ]; then
        echo "ok 2 - it prints the table and the BENCH line"
else
        echo "not ok 2 - it prints the table and the BENCH line"
        tail -n 12 "$out" | sed 's/^/# /'
fi
