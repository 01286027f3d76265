#!/bin/sh
# test_jobs_cli - pxl-jobs against a jobs table made here with sqlite3 from
# the schema of framework/pxl_queue_sql.h (the runtime's contract), with a
# job in every state: each command's output and exit status, jobs that
# are not there, usage errors, a bad app file, no jobs file at all, the
# app's SQLite database holding the jobs, a lock held by another writer,
# and a queue name that is SQL. TAP output. test_jobs_cli_live.py runs
# pxl-jobs on the jobs a real pxl-serve made, with SQLite and with Redis.
set -u

. "${PXL_SRCDIR:?}/tests/tap.sh"
jobs=${PXL_BUILDDIR:?}/framework/pxl-jobs
py=/usr/bin/python3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

# The schema as the header writes it: the C string's pieces, joined.
schema=$(sed -n '/^#define PXL_QUEUE_SCHEMA/,/^$/p' \
        "$PXL_SRCDIR/framework/pxl_queue_sql.h" |
        sed -n 's/^ *"\(.*\)" *\\\{0,1\}$/\1/p' | tr -d '\n')

# run RC ARGS...: pxl-jobs ARGS with stdout in $tmp/out, stderr in
# $tmp/err; true when it exits RC and the sanitizers said nothing.
run() {
        want=$1
        shift
        "$jobs" "$@" >"$tmp/out" 2>"$tmp/err"
        got=$?
        if grep -qE 'Sanitizer|runtime error' "$tmp/err"; then
                echo "# sanitizer report:"
                diag "$tmp/err"
                return 1
        fi
        if [ "$got" -ne "$want" ]; then
                echo "# exit $got, want $want; stdout, stderr:"
                diag "$tmp/out" "$tmp/err"
                return 1
        fi
        return 0
}
nl='
'
# check NAME RC EXPECTED ARGS...: run, then stdout is EXPECTED exactly.
check() {
        name=$1 rc=$2 expected=$3
        shift 3
        if run "$rc" "$@" &&
                printf '%s' "$expected${expected:+$nl}" | cmp -s - "$tmp/out"
        then
                ok "$name"
        else
                not_ok "$name"
                echo "# want:"
                printf '%s\n' "$expected" | diag
                echo "# got:"
                diag "$tmp/out" "$tmp/err"
        fi
}
# check_err NAME RC PATTERN ARGS...: run, then stderr matches PATTERN.
check_err() {
        name=$1 rc=$2 pattern=$3
        shift 3
        if run "$rc" "$@" && grep -qE -- "$pattern" "$tmp/err"; then
                ok "$name"
        else
                not_ok "$name"
                echo "# stderr, want /$pattern/:"
                diag "$tmp/err"
        fi
}
# same NAME EXPECTED ACTUAL: two strings are the same.
same() {
        if [ "$3" = "$2" ]; then
                ok "$1"
        else
                not_ok "$1"
                printf '%s\n' "want: $2" "got: $3" | diag
        fi
}
# sql FILE STATEMENT: sqlite3's answer, one row a line.
sql() {
        sqlite3 -batch "$1" "$2"
}

now=$(($(date +%s) * 1000))
hour=3600000
t0=1796300946123 # 2026-12-03T12:29:06.123Z
cd "$tmp" || exit 1
printf 'name = "demo";\n' >app.cfg
db=$tmp/demo-jobs.db

# No jobs file yet: no jobs, and pxl-jobs does not make one.
check "no jobs file: queues prints the header only" 0 \
        "QUEUE  WAITING  DELAYED   ACTIVE COMPLETED     DEAD" app.cfg queues
if [ ! -e "$db" ]; then
        ok "no jobs file: none is created"
else
        not_ok "no jobs file: none is created"
fi
check_err "no jobs file: show is not found (3)" 3 \
        '^pxl-jobs: no job "1" in queue "mail"$' app.cfg show mail 1
check "no jobs file: retry --all retries none" 0 "0 retried" \
        app.cfg retry mail --all

# A file without the table (the runtime makes it on first use): no jobs.
sql "$db" "CREATE TABLE other (x)"
check "no jobs table: queues --json prints nothing" 0 "" \
        app.cfg queues --json
check "no jobs table: clean removes none" 0 "0 removed" app.cfg clean mail

sql "$db" "PRAGMA journal_mode=WAL; $schema" >/dev/null
cols="queue, id, state, payload, priority, run_at, attempt, attempts,
      backoff_ms, backoff_exp, timeout_ms, keep, lease_until, owner,
      progress, result, error, created_at, started_at, finished_at"
sql "$db" "INSERT INTO pxl_jobs ($cols) VALUES
 ('mail', 'w1', 'waiting', '{\"to\":\"a@example.org\"}', 0, $now - 5000, 0, 3,
  1000, 1, 30000, 0, NULL, NULL, NULL, NULL, NULL, $now - 5000, NULL, NULL),
 ('mail', 'w2', 'waiting', '{}', 5, $now - 1000, 1, 3, 1000, 1, 30000, 0,
  NULL, NULL, NULL, NULL, 'smtp: timeout', $now - 9000, $now - 8000, NULL),
 ('mail', 'later', 'waiting', '[1,2]', 0, $now + $hour, 0, 3, 1000, 0,
  30000, 0, NULL, NULL, NULL, NULL, NULL, $now, NULL, NULL),
 ('mail', 'a1', 'active', '\"x/y\"', 0, $now - 2000, 1, 3, 1000, 1, 30000,
  0, $now + 30000, 'node1/0', '{\"done\":0.5}', NULL, NULL, $now - 2000,
  $now - 1000, NULL),
 ('mail', 'c1', 'completed', '{}', 0, $t0, 1, 3, 1000, 1, 30000, 0, NULL,
  NULL, NULL, '{\"sent\":true}', NULL, $t0, $t0, $t0 + 10),
 ('mail', 'c2', 'completed', '{}', 0, $now, 1, 3, 1000, 1, 30000, 0, NULL,
  NULL, NULL, 'null', NULL, $now - 60000, $now - 60000, $now - 60000),
 ('mail', 'c3', 'completed', '{}', 0, $now, 1, 3, 1000, 1, 30000, 0, NULL,
  NULL, NULL, NULL, NULL, $now - 1000, $now - 1000, $now - 500),
 ('mail', 'd1', 'dead', '{\"to\":\"b@example.org\"}', 2, $t0, 3, 3, 1000, 1,
  30000, 10, NULL, NULL, '7', NULL, 'smtp: 550 no such user', $t0 - 60000,
  $t0 - 1000, $t0),
 ('mail', 'dead two', 'dead', 'not json', 0, $t0, 5, 5, 1000, 0, 30000, 0,
  NULL, NULL, NULL, NULL, 'line one
line two', $t0, $t0 + 1000, $t0 + 2000),
 ('report-daily', 'r1', 'waiting', '{}', 0, $now, 0, 3, 1000, 1, 30000, 0,
  NULL, NULL, NULL, NULL, NULL, $now, NULL, NULL)"

check "queues: counts per state, delayed apart from waiting" 0 \
"QUEUE         WAITING  DELAYED   ACTIVE COMPLETED     DEAD
mail                2        1        1         3        2
report-daily        1        0        0         0        0" app.cfg queues
check "queues --json: one object per queue" 0 \
'{"queue":"mail","waiting":2,"delayed":1,"active":1,"completed":3,"dead":2}
{"queue":"report-daily","waiting":1,"delayed":0,"active":0,"completed":0,"dead":0}' \
        app.cfg queues --json

check "show: every field, JSON as JSON, times as ISO 8601 and ms" 0 \
"queue        mail
id           d1
state        dead
priority     2
attempt      3
attempts     3
backoff_ms   1000
backoff_exp  1
timeout_ms   30000
keep         10
run_at       2026-12-03T12:29:06.123Z $t0
lease_until  -
owner        -
created_at   2026-12-03T12:28:06.123Z $((t0 - 60000))
started_at   2026-12-03T12:29:05.123Z $((t0 - 1000))
finished_at  2026-12-03T12:29:06.123Z $t0
payload      {\"to\":\"b@example.org\"}
progress     7
result       -
error        \"smtp: 550 no such user\"" app.cfg show mail d1
if run 0 app.cfg show mail a1 --json && "$py" -c '
import json, sys
j = json.loads(open(sys.argv[1]).read())
assert j["id"] == "a1" and j["state"] == "active", j
assert j["payload"] == "x/y" and j["progress"] == {"done": 0.5}, j
assert j["result"] is None and j["error"] is None, j
assert j["lease_until"] == int(sys.argv[2]) + 30000, j
assert j["lease_until_iso"].endswith("Z") and j["owner"] == "node1/0", j
assert j["finished_at"] is None and j["finished_at_iso"] is None, j
assert len(j) == 20 + 5, sorted(j)
' "$tmp/out" "$now" 2>"$tmp/py"; then
        ok "show --json: one object with every field"
else
        not_ok "show --json: one object with every field"
        diag "$tmp/out" "$tmp/py"
fi
run 0 app.cfg show mail "dead two" --json
same "show: a payload that is not JSON is shown as a string" \
        '"not json"' "$(sed -n 's/.*"payload":\("[^"]*"\).*/\1/p' "$tmp/out")"
check_err "show: no such job is not found (3)" 3 \
        '^pxl-jobs: no job "nope" in queue "mail"$' app.cfg show mail nope
check_err "show: the same id in another queue is not found (3)" 3 \
        'no job "d1" in queue "report-daily"' app.cfg show report-daily d1
check_err "show: an id that starts with '-' after --" 3 \
        'no job "-1" in queue "mail"' app.cfg show -- mail -1

check "dead: id, attempts, when, the error on one line" 0 \
"ID       ATTEMPTS DIED                     ERROR
d1            3/3 2026-12-03T12:29:06.123Z smtp: 550 no such user
dead two      5/5 2026-12-03T12:29:08.123Z line one line two" \
        app.cfg dead mail
check "dead --json: one object per dead job" 0 \
"{\"id\":\"d1\",\"attempt\":3,\"attempts\":3,\"error\":\"smtp: 550 no such user\",\"finished_at\":$t0,\"finished_at_iso\":\"2026-12-03T12:29:06.123Z\"}
{\"id\":\"dead two\",\"attempt\":5,\"attempts\":5,\"error\":\"line one\\nline two\",\"finished_at\":$((t0 + 2000)),\"finished_at_iso\":\"2026-12-03T12:29:08.123Z\"}" \
        app.cfg dead mail --json
check "dead: a queue without dead jobs lists none" 0 \
        "ID ATTEMPTS DIED                     ERROR" app.cfg dead report-daily

# A queue name or id is a parameter, never SQL.
check "dead: a queue name that is SQL matches nothing" 0 "" \
        app.cfg dead "mail' OR '1'='1" --json
check_err "retry: an id that is SQL matches nothing" 3 'no job' \
        app.cfg retry mail "x' OR state='dead"
same "SQL in a name changed nothing" 2 \
        "$(sql "$db" "SELECT count(*) FROM pxl_jobs WHERE state = 'dead'")"

check_err "retry: a job that is not dead is not found (3)" 3 \
        '^pxl-jobs: job "w1" in queue "mail" is waiting, not dead$' \
        app.cfg retry mail w1
check_err "retry: no such job is not found (3)" 3 \
        '^pxl-jobs: no job "zz" in queue "mail"$' app.cfg retry mail zz
before=$(($(date +%s) * 1000))
check "retry ID: one dead job back" 0 "1 retried" app.cfg retry mail d1
same "retry ID: waiting from now, attempts anew, error kept" \
        "waiting|0|3|1|smtp: 550 no such user|||" \
        "$(sql "$db" "SELECT state, attempt, attempts, run_at >= $before
           AND run_at <= $(($(date +%s) * 1000 + 1000)), error,
           finished_at, lease_until, owner FROM pxl_jobs
           WHERE queue = 'mail' AND id = 'd1'")"
check_err "retry ID: a second retry finds it waiting (3)" 3 \
        'is waiting, not dead' app.cfg retry mail d1
check "retry --all: the other dead job" 0 "1 retried" \
        app.cfg retry mail --all
check "retry --all: none left" 0 "0 retried" app.cfg retry mail --all
check "queues: the retried jobs wait" 0 \
'{"queue":"mail","waiting":4,"delayed":1,"active":1,"completed":3,"dead":0}
{"queue":"report-daily","waiting":1,"delayed":0,"active":0,"completed":0,"dead":0}' \
        app.cfg queues --json

check "clean --older-than: only jobs finished before then" 0 "1 removed" \
        app.cfg clean mail --older-than 3600
same "clean --older-than: the newer ones stay" "c2 c3" "$(sql "$db" \
        "SELECT group_concat(id, ' ') FROM pxl_jobs WHERE state = 'completed'")"
# Two schedule ticks: one completed just now, which a late worker must
# still find, and one two minutes ago.
sql "$db" "INSERT INTO pxl_jobs ($cols) VALUES
 ('mail', 'schedule:s:1', 'completed', 'null', 0, $now - 1000, 1, 3, 1000, 0,
  30000, 1, NULL, NULL, NULL, NULL, NULL, $now - 1000, $now - 1000,
  $now - 500),
 ('mail', 'schedule:s:2', 'completed', 'null', 0, $now - 121000, 1, 3, 1000,
  0, 30000, 1, NULL, NULL, NULL, NULL, NULL, $now - 121000, $now - 121000,
  $now - 120000)"
check "clean: every completed job of the queue" 0 "3 removed" \
        app.cfg clean mail
same "clean: a schedule's tick completed in the last minute stays" \
        "schedule:s:1" "$(sql "$db" \
        "SELECT group_concat(id, ' ') FROM pxl_jobs WHERE state = 'completed'")"
same "clean: the other states stay" 8 \
        "$(sql "$db" "SELECT count(*) FROM pxl_jobs")"

# Usage errors: 2, before the app file is read.
check_err "usage: no arguments (2)" 2 '^usage: pxl-jobs'
check_err "usage: no command (2)" 2 'want an app file and a command' app.cfg
check_err "usage: unknown command (2)" 2 'unknown command "list"' \
        app.cfg list
check_err "usage: show wants an id (2)" 2 'show: wrong number of arguments' \
        app.cfg show mail
check_err "usage: retry with an id and --all (2)" 2 \
        'retry: wrong number of arguments' app.cfg retry mail d1 --all
check_err "usage: --all is for retry only (2)" 2 \
        'clean does not take that option' app.cfg clean mail --all
check_err "usage: --older-than wants seconds (2)" 2 \
        '--older-than: "soon" is not a number of seconds' \
        app.cfg clean mail --older-than soon
check_err "usage: an unknown option (2)" 2 'usage: pxl-jobs' \
        app.cfg queues --fast
check_err "usage: comes before a missing app file (2)" 2 'unknown command' \
        missing.cfg list
if run 0 -h && grep -q '^usage: pxl-jobs' "$tmp/out" && run 0 -V &&
        grep -qE '^pxl-jobs [0-9.]+$' "$tmp/out"; then
        ok "-h and -V"
else
        not_ok "-h and -V"
fi

# Config errors: 1, as pxl-serve prints them.
printf 'name = "demo";\nlisten = { port = 70000; };\n' >bad.cfg
check_err "bad app file: 1, the error at file:line: key" 1 \
        '^bad.cfg:2: listen.port: ' bad.cfg queues
printf 'name = "demo"\nlisten = {\n' >syntax.cfg
check_err "app file syntax error: 1, file:line" 1 '^syntax.cfg:[0-9]+: ' \
        syntax.cfg queues
check_err "missing app file: 1" 1 'missing.cfg' missing.cfg queues

# The app's SQLite database holds the jobs when there is one.
sql app.db "$schema; INSERT INTO pxl_jobs (queue, id, state, payload,
        run_at, attempts, backoff_ms, backoff_exp, timeout_ms, keep,
        created_at, error) VALUES ('db', 'x', 'dead', '{}', 0, 1, 0, 0, 1, 0,
        0, 'boom')"
printf 'name = "demo";\ndatabase = { driver = "sqlite"; path = "app.db";
busy_timeout = 4000; };\n' >db.cfg
check "database.path: the jobs are in the app's database" 0 \
        '{"queue":"db","waiting":0,"delayed":0,"active":0,"completed":0,"dead":1}' \
        db.cfg queues --json

# Another connection holds the write lock for a moment: pxl-jobs waits.
rm -f "$tmp/locked"
"$py" -c '
import sqlite3, sys, time
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute("BEGIN IMMEDIATE")
open(sys.argv[2], "w").close()
time.sleep(0.5)
c.execute("COMMIT")
' app.db "$tmp/locked" &
lock_pid=$!
i=0
while [ ! -e "$tmp/locked" ] && [ $i -lt 100 ]; do
        sleep 0.05
        i=$((i + 1))
done
check "a writer holds the lock: retry waits for it (busy_timeout)" 0 \
        "1 retried" db.cfg retry db --all
wait $lock_pid

printf 'not a database, just text\n%.0s' 1 2 3 4 5 6 7 8 >demo-jobs.db
check_err "a jobs file that is not a database: 1, naming it" 1 \
        "^pxl-jobs: (\\./)?demo-jobs.db: .*not a database" app.cfg queues

echo "1..$n"
[ "$failed" -eq 0 ]
