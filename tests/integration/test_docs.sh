#!/bin/sh
# Docs move with the code: every config key pxl-serve knows (-T) is
# described in pxl.cfg(5), and every option of -h (--migrate too) is in
# pxl-serve(1); every command and option of `pxl-jobs -h` is in
# pxl-jobs(1).
# -T itself must list at least as many keys as pxl.cfg(5) documents (one
# `.It Ic KEY No (...)` entry each): an empty or cut-short -T would make
# the per-key checks vacuous.
src=${PXL_SRCDIR:?}
serve=${PXL_SERVE:?}
t_out=$("$serve" -T)
t_rc=$?
keys=$(printf '%s\n' "$t_out" | awk 'NF {print $1}')
nkeys=$(printf '%s\n' "$keys" | grep -c .)
man_keys=$(sed -n 's/^\.It Ic \(.*\) No .*/\1/p' "$src/man/pxl.cfg.5" |
        sed 's/ Ns \. Ns Ic /./g')
nman=$(printf '%s\n' "$man_keys" | grep -c .)
cfg_text=$(groff -mdoc -Tascii -P-c "$src/man/pxl.cfg.5" 2>/dev/null | col -b)
serve_text=$(groff -mdoc -Tascii -P-c "$src/man/pxl-serve.1" 2>/dev/null | col -b)
# "  -h, --help  TEXT" gives both -h and --help.
opts=$("$serve" -h |
        sed -n 's/^  \(--*[A-Za-z][A-Za-z-]*\)\(, \(--[A-Za-z-]*\)\)\{0,1\} .*/\1 \3/p')
jobs=${PXL_BUILDDIR:?}/framework/pxl-jobs
jobs_text=$(groff -mdoc -Tascii -P-c "$src/man/pxl-jobs.1" 2>/dev/null | col -b)
jobs_help=$("$jobs" -h)
jobs_words=$(printf '%s\n' "$jobs_help" |
        sed -n 's/^  \(--*[A-Za-z][A-Za-z-]*\|[a-z][a-z]*\)\(, \(--[A-Za-z-]*\)\)\{0,1\} .*/\1 \3/p' |
        tr ' ' '\n' | grep . | sort -u)
njobs=$(printf '%s\n' "$jobs_words" | grep -c .)
. "$src/tests/tap.sh"
echo "# pxl-serve -T listed $nkeys keys (exit $t_rc); pxl.cfg(5) documents $nman"
# documents TEXT ITEM PAGE AFTER: the rendered PAGE (its TEXT) lists ITEM
# at a line's start, followed by what the regex AFTER matches.
documents() {
        if printf '%s\n' "$1" | grep -qE -- "^ +(-[A-Za-z], )?$2($4)"; then
                ok "$3 documents $2"
        else
                not_ok "$3 documents $2"
        fi
}
if [ "$t_rc" -eq 0 ] && [ "$nman" -gt 0 ] && [ "$nkeys" -ge "$nman" ]; then
        ok "pxl-serve -T lists $nkeys keys, no fewer than the $nman pxl.cfg(5) documents"
else
        not_ok "pxl-serve -T lists $nkeys keys (exit $t_rc), no fewer than the $nman pxl.cfg(5) documents"
fi
missing=
for k in $man_keys; do
        printf '%s\n' "$keys" | grep -qxF -- "$k" || missing="$missing $k"
done
if [ "$nman" -gt 0 ] && [ -z "$missing" ]; then
        ok "every key pxl.cfg(5) documents is listed by pxl-serve -T"
else
        not_ok "every key pxl.cfg(5) documents is listed by pxl-serve -T"
        echo "# not listed:$missing"
fi
# The same table, row for row: -T's KEY DEFAULT RANGE columns and
# pxl.cfg(5)'s `.It Ic KEY No (type, MIN to MAX, default VALUE)` lines
# in the same order, with the same defaults and ranges.
t_rows=$(printf '%s\n' "$t_out" | awk 'NF {print $1, $3, $4}')
man_rows=$(sed -n 's/^\.It Ic \(.*\) No (\(.*\))$/\1|\2/p' "$src/man/pxl.cfg.5" |
        sed 's/ Ns \. Ns Ic /./g' | awk -F'|' '{
                def = "-"; range = "-"
                if (match($2, /default .*$/)) {
                        def = substr($2, RSTART + 8)
                        gsub(/\\\(dq/, "\"", def)
                        gsub(/Ar | Ns /, "", def)
                }
                if (match($2, /[0-9]+ to [0-9]+/)) {
                        range = substr($2, RSTART, RLENGTH)
                        sub(/ to /, "..", range)
                }
                print $1, def, range
        }')
if [ -n "$t_rows" ] && [ "$t_rows" = "$man_rows" ]; then
        ok "pxl-serve -T and pxl.cfg(5) list the keys in the same order, with the same defaults and ranges"
else
        not_ok "pxl-serve -T and pxl.cfg(5) list the keys in the same order, with the same defaults and ranges"
        printf '%s\n' "$t_rows" >"${TMPDIR:-/tmp}/pxl-docs-T.$$"
        printf '%s\n' "$man_rows" | diff "${TMPDIR:-/tmp}/pxl-docs-T.$$" - |
                sed 's/^/# /' | head -n 20
        rm -f "${TMPDIR:-/tmp}/pxl-docs-T.$$"
fi
for k in $keys; do
        if printf '%s\n' "$cfg_text" | grep -qF -- "$k"; then
                ok "pxl.cfg(5) documents $k"
        else
                not_ok "pxl.cfg(5) documents $k"
        fi
done
for o in $opts; do
        documents "$serve_text" "$o" "pxl-serve(1)" '[[:space:]]|,|$'
done
if "$serve" -V | grep -qE '^pxl-serve [0-9.]+ \(plugin ABI [0-9]+\.[0-9]+\)$'; then
        ok "pxl-serve -V prints version and ABI"
else
        not_ok "pxl-serve -V prints version and ABI"
fi
if [ "$njobs" -ge 8 ]; then
        ok "pxl-jobs -h lists $njobs commands and options"
else
        not_ok "pxl-jobs -h lists $njobs commands and options (want 5 commands, 3 options)"
fi
for w in $jobs_words; do
        documents "$jobs_text" "$w" "pxl-jobs(1)" '[[:space:]]|,|$'
done
if "$jobs" -V | grep -qE '^pxl-jobs [0-9.]+$'; then
        ok "pxl-jobs -V prints the version"
else
        not_ok "pxl-jobs -V prints the version"
fi
# Every installed program: --help is the usage on stdout (exit 0),
# --version is "PROGRAM VERSION", and an unknown long option is a usage
# error (exit 2, the usage on stderr).
version=$(sed -n 's/^#define PACKAGE_VERSION "\(.*\)"$/\1/p' "$PXL_BUILDDIR/config.h")
for p in framework/pxl-serve framework/pxl-jobs framework/pxl-bench \
        scripts/pxl-new; do
        prog=${p#*/}
        if out=$("$PXL_BUILDDIR/$p" --help 2>/dev/null) &&
                printf '%s\n' "$out" | head -n 1 | grep -q "^usage: $prog "; then
                ok "$prog --help prints the usage and exits 0"
        else
                not_ok "$prog --help prints the usage and exits 0"
        fi
        out=$("$PXL_BUILDDIR/$p" --version 2>/dev/null)
        rc=$?
        case $out in
        "$prog $version" | "$prog $version "*) vok=yes ;;
        *) vok= ;;
        esac
        if [ "$rc" -eq 0 ] && [ -n "$version" ] && [ -n "$vok" ]; then
                ok "$prog --version prints \"$prog $version\""
        else
                not_ok "$prog --version prints \"$prog $version\" (exit $rc: $out)"
        fi
        err=$("$PXL_BUILDDIR/$p" --no-such-option 2>&1 >/dev/null)
        rc=$?
        if [ "$rc" -eq 2 ] && printf '%s\n' "$err" | grep -q "usage: $prog "; then
                ok "$prog --no-such-option: exit 2, the usage on stderr"
        else
                not_ok "$prog --no-such-option: exit 2, the usage on stderr (exit $rc)"
        fi
done
# Every man page is in the README's list of them (the man/ row and
# Manual pages) and in pxl-serve(1)'s SEE ALSO.
# shellcheck disable=SC2016 # the backquotes are the README's
readme_pages=$(sed -n '/^| `man\/` |/p; /^## Manual pages/,/^## /p' "$src/README.md")
see_also=$(sed -n '/^\.Sh SEE ALSO/,/^\.Sh /p' "$src/man/pxl-serve.1")
for f in "$src"/man/*.[1-8]; do
        b=${f##*/}
        page=${b%.*}
        sec=${b##*.}
        count=$(printf '%s\n' "$readme_pages" | grep -oF -- "$page($sec)" | wc -l)
        if [ "$count" -ge 2 ]; then
                ok "README lists $page($sec) in the man/ row and Manual pages"
        else
                not_ok "README lists $page($sec) in the man/ row and Manual pages"
        fi
        [ "$b" = pxl-serve.1 ] && continue
        if printf '%s\n' "$see_also" | grep -qxE -- "\.Xr $page $sec( ,)?"; then
                ok "pxl-serve(1) SEE ALSO names $page($sec)"
        else
                not_ok "pxl-serve(1) SEE ALSO names $page($sec)"
        fi
done
# Quotes render around what they quote: the Redis namespace is
# 'pxl:APP:' (its colon inside the quotes, not after them), and no
# quote opens inside another.
lq=$(printf '\342\200\230') # the UTF-8 quotes groff -Tutf8 renders
rq=$(printf '\342\200\231')
ldq=$(printf '\342\200\234')
rdq=$(printf '\342\200\235')
nested="${lq}[^${rq}]*${lq}|${ldq}[^${rdq}]*${ldq}"
for p in pxl-serve.1 pxl-plugin.3; do
        text=$(groff -mdoc -Tutf8 -P-c "$src/man/$p" 2>/dev/null | col -b)
        if printf '%s\n' "$text" | grep -qF "${lq}pxl:APP:$rq" &&
                ! printf '%s\n' "$text" | grep -qF "${lq}pxl:APP$rq:"; then
                ok "$p renders the Redis namespace as 'pxl:APP:'"
        else
                not_ok "$p renders the Redis namespace as 'pxl:APP:'"
        fi
        # (lines joined: a quote may open on one line and close on the next)
        flat=$(printf '%s\n' "$text" | tr -s '\n ' '  ')
        if printf '%s\n' "$flat" | grep -qE "$nested"; then
                not_ok "$p has no quote opened inside another"
                printf '%s\n' "$flat" | grep -oE ".{0,30}($nested).{0,30}" |
                        sed 's/^/# /'
        else
                ok "$p has no quote opened inside another"
        fi
done
echo "# checked $nkeys keys and $(printf '%s\n' "$opts" | grep -c .) options"
echo "1..$n"
[ "$failed" -eq 0 ]
