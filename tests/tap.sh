# tap.sh - what the shell tests share: TAP case lines and a failure count.
# Source it: . "$PXL_SRCDIR/tests/tap.sh"; then ok/not_ok "name", diag FILE.
n=0
failed=0
ok() {
        n=$((n + 1))
        echo "ok $n - $1"
}
not_ok() {
        n=$((n + 1))
        failed=$((failed + 1))
        echo "not ok $n - $1"
}
diag() {
        sed 's/^/# /' "$@"
}
