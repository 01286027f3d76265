"""
test_queue_schedule - the queue manager's schedules, rate limits, jobs
added in a database transaction and per-queue metrics on one back end,
through the jobtest plugin (tests/plugins/jobtest.c): its processors log
every run (one JSON line, one write(2), with the writer's pid) to a file
that survives kill -9, and its job/addtx route adds a job with
pxl_job_add_tx next to a row of its own (table jt_rows) in one
transaction. The stored jobs are read outside pxl (pxljobs.JobStore).

This file runs with the jobs in SQLite; test_queue_schedule_redis.py
runs it with the jobs in Redis (run("redis")). Case names start with
the back end.

Covered:
- queue.schedules, every = 1, on two pxl-serve processes sharing the
  jobs (one app file directory and NAME-jobs.db with SQLite; one Redis)
  and, with Redis, on a cluster of workers = 2 (workers > 1 needs a
  redis group, which puts the jobs in Redis: no SQLite counterpart):
  over the seconds all ran, each tick's job exists once (id
  schedule:NAME:SECONDS, run_at the tick) and ran once, no tick is
  missing, none started early, and the job ran soon after its tick. A
  cron schedule (cron = "* * * * *") rides along on the pair: -t
  accepts it, and any job it added is for a whole minute the pair ran
  through, once. A bad cron expression is refused with FILE:LINE.
- queue.rate_limits = [ "rated=10" ]: 100 jobs start at most 50 (+1)
  in any 5 s and 10 (+1) in any 1 s (the processor's own start times and
  started_at), on one process, and on two processes sharing the limit
  (together); a rate limit naming a queue no plugin processes is refused
  at start.
- pxl_job_add_tx, the app's database SQLite (with SQLite the job is a
  row of that database; with Redis a row of its outbox, moved to Redis
  after the commit): a rolled back transaction leaves neither the row
  nor the job (nor an outbox row), and the job never runs; a committed
  one both, and the job runs once, after the commit (not while the
  transaction is open); committed, then kill -9 at once: after a
  restart the job runs once (with Redis it was in Redis or still in the
  outbox, once). Without a database there is no transaction to add to.
  SQLite only: with PostgreSQL and no redis group (the jobs then in a
  file of their own) pxl_job_add_tx refuses, PXL_EINVAL
  (test_queue_outbox covers PostgreSQL with Redis).
- pxl_metrics() "queues": each processed queue with its documented keys,
  the store's counts (waiting, delayed, active, completed, dead), this
  worker's counters (running, processed, failed, retried, died) and
  waitMs/runMs {p50, p99, max}, checked against what the test ran.
"""
import asyncio
import json
import os
import re
import sqlite3
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from pxltest import (TAP, Server, astop_servers,  # noqa: E402
                     check, eq, load_slack, run_serve, tmpdir)
from pxljobs import (JobLog, PipelinedClient, RedisStore,  # noqa: E402
                     backend, table, wait_log)
from pxljobs import queue_config as config  # noqa: E402
from pxlpg import PG  # noqa: E402
from pxlws import poll  # noqa: E402

tap = TAP()

RATE = 10  # jobs a second of queue "rated"


def now_ms():
    return int(time.time() * 1000)


# ---- servers sharing a directory ---------------------------------------------

def server_in(d, file_name, text, workers=1):
    """A Server whose app file is d/file_name.cfg (several may share d)."""
    s = Server(text, name=file_name, workers=workers)
    os.remove(s.cfg)
    s.dir = d
    s.cfg = os.path.join(d, file_name + ".cfg")
    s.log_path = os.path.join(d, file_name + ".log")
    with open(s.cfg, "w") as f:
        f.write(text)
    return s


def make_rows_table(path):
    con = sqlite3.connect(path)
    try:
        con.execute("CREATE TABLE jt_rows (name TEXT PRIMARY KEY)")
        con.commit()
    finally:
        con.close()


# ---- a client ---------------------------------------------------------------

class Client(PipelinedClient):
    """One connection; requests may be pipelined (replies by requestId)."""

    async def response(self, type_, action, data, timeout=20):
        f = await self.call(type_, action, data, timeout)
        check("response" in f, "%s/%s %r: %r" % (type_, action, data, f))
        return f["response"]

    async def add_many(self, specs, timeout=60):
        """Pipelined job/add: specs [(queue, payload, options)]."""
        futs = []
        for q, p, o in specs:
            d = {"queue": q, "payload": p}
            if o is not None:
                d["options"] = o
            futs.append(await self.send("job", "add", d))
        out = []
        for f, s in zip(await asyncio.wait_for(asyncio.gather(*futs),
                                               timeout), specs):
            r = f.get("response")
            check(isinstance(r, dict) and isinstance(r.get("id"), str)
                  and r.get("existed") is False, "job/add %r: %r" % (s, f))
            out.append(r)
        return out



# ---- schedules --------------------------------------------------------------

SCHED_PAYLOAD = '{\\"value\\":\\"tick\\"}'


def sched_queue(cron=False):
    s = ('schedules = ( { name = "s"; queue = "sched"; every = 1; '
         'payload = "%s"; }' % SCHED_PAYLOAD)
    if cron:
        s += ', { name = "c"; queue = "sched"; cron = "* * * * *"; }'
    return s + " );"


class Sched:
    """The servers that run schedule "s" (every = 1): two processes on one
    app file directory (sharing its NAME-jobs.db, or one Redis), and with
    Redis a cluster of 2 workers."""

    def __init__(self, be):
        self.be = be
        self.pair_dir = tmpdir()
        self.pair_logs = [JobLog(os.path.join(self.pair_dir, "j%d.log" % i))
                          for i in (1, 2)]
        self.pair = [server_in(self.pair_dir, "pair%d" % (i + 1),
                               config("sched", self.pair_logs[i].path,
                                      queue=sched_queue(cron=True),
                                      extra=be.config()))
                     for i in (0, 1)]
        self.pair_store = be.store("sched", os.path.join(self.pair_dir,
                                                         "sched-jobs.db"))
        self.cluster_log = JobLog(os.path.join(tmpdir(), "cluster.log"))
        self.cluster = None
        self.launch = {}  # name -> ms since the epoch before its start
        self.up = {}  # name -> ms since the epoch when all of it listened
        self.down = {}

    def start(self):
        self.launch["pair"] = now_ms()
        for s in self.pair:
            s.start()
        self.up["pair"] = now_ms()
        if self.be.redis is None:
            return
        self.launch["cluster"] = now_ms()
        self.cluster = Server(config(
            "cl", self.cluster_log.path, queue=sched_queue(),
            extra=self.be.config(), workers=2), name="cl", workers=2)
        self.cluster.start()
        self.up["cluster"] = now_ms()
        self.cluster_store = self.be.store("cl")


def check_ticks(what, store, lines, launch, up, down, name="s", workers=2):
    """Each tick strictly inside [up, down] has one job that ran once, on
    time; no job for a tick outside [launch, down]."""
    rows = {r["id"]: r for r in store.jobs("sched")}
    prefix = "schedule:%s:" % name
    ticks = sorted(int(i[len(prefix):]) for i in rows if i.startswith(prefix))
    first, last = up // 1000 + 1, down // 1000 - 1
    want = list(range(first, last + 1))
    check(len(want) >= 4, "%s: only %d whole seconds ran" % (what, len(want)))
    missing = [t for t in want if t not in ticks]
    eq(missing, [], "%s: ticks with no job (%d..%d)" % (what, first, last))
    extra = [t for t in ticks if t <= launch // 1000 or t > down // 1000]
    eq(extra, [], "%s: ticks outside the time the servers ran" % what)
    for t in ticks:
        eq(rows[prefix + str(t)]["run_at"], t * 1000, "%s: run_at of tick %d"
           % (what, t))
    starts = {}
    for x in lines:
        if x["ev"] == "start" and x["queue"] == "sched" \
                and x["id"].startswith(prefix):
            starts.setdefault(x["id"], []).append(x)
    twice = {i: len(v) for i, v in starts.items() if len(v) > 1}
    eq(twice, {}, "%s: ticks that ran more than once" % what)
    late_bound = 1000 + load_slack(5, 2) * 1000
    lates = []
    for t in want:
        i = prefix + str(t)
        check(i in starts, "%s: tick %d has a job (%s) but it never ran: %r"
              % (what, t, i, rows[i]))
        x = starts[i][0]
        check(x["at"] >= t * 1000, "%s: tick %d started %d ms early"
              % (what, t, t * 1000 - x["at"]))
        lates.append(x["at"] - t * 1000)
        check(x["at"] - t * 1000 <= late_bound, "%s: tick %d started %d ms "
              "after it" % (what, t, x["at"] - t * 1000))
        eq(x["payload"], {"value": "tick"}, "%s: payload of tick %d"
           % (what, t))
        eq(x["attempt"], 1, "%s: attempt of tick %d" % (what, t))
        eq((rows[i]["state"], rows[i]["attempt"]), ("completed", 1),
           "%s: tick %d stored" % (what, t))
    pids = {starts[prefix + str(t)][0]["pid"] for t in want}
    tap.diag("%s: %d ticks (%d..%d), each ran once, %d..%d ms after its "
             "second, run by %d of %d workers" % (
                 what, len(want), first, last, min(lates), max(lates),
                 len(pids), workers))
    return starts


async def t_sched_pair(sc):
    """Two pxl-serve processes, one directory, one jobs file (or one
    Redis): schedule s (every = 1) ran ~5 s (and more: both stay up while
    other cases run, then stop)."""
    check(sc.pair[1].running(), "the pair did not start (above)")
    wait = sc.up["pair"] + 5500 - now_ms()
    if wait > 0:
        await asyncio.sleep(wait / 1000)
    for s in sc.pair:
        await asyncio.to_thread(s.stop)
    sc.down["pair"] = now_ms()
    lines = [x for g in sc.pair_logs for x in g.lines()]
    check_ticks("two processes", sc.pair_store, lines, sc.launch["pair"],
                sc.up["pair"], sc.down["pair"])
    eq([x for x in lines if x["ev"] == "start"
        and not x["id"].startswith("schedule:")], [], "other runs")
    # The cron schedule ("* * * * *"): a job only for a whole minute the
    # pair was up at, once.
    could = [t for t in range(sc.launch["pair"] // 1000 + 1,
                              sc.down["pair"] // 1000 + 1) if t % 60 == 0]
    minutes = [t for t in could if sc.up["pair"] < t * 1000
               and t * 1000 + 2000 < sc.down["pair"]]
    crons = sorted(r["id"] for r in sc.pair_store.jobs("sched")
                   if r["id"].startswith("schedule:c:"))
    eq([c for c in crons if int(c.split(":")[2]) not in could], [],
       "cron jobs for a second that is no whole minute the pair ran at")
    for m in minutes:
        i = "schedule:c:%d" % m
        check(i in crons, "no cron job for minute %d (the pair ran from "
              "%d to %d)" % (m, sc.up["pair"], sc.down["pair"]))
        eq(len([x for x in lines if x["ev"] == "start" and x["id"] == i]), 1,
           "runs of %s" % i)
    tap.diag("cron: the pair ran through %d whole minute(s), jobs %r"
             % (len(could), crons))


async def t_sched_cluster(sc):
    """workers = 2 with a real redis-server: the workers share the jobs in
    Redis; schedule s ran ~5 s."""
    check(sc.cluster is not None and sc.cluster.running(),
          "the cluster did not start (above)")
    wait = sc.up["cluster"] + 5500 - now_ms()
    if wait > 0:
        await asyncio.sleep(wait / 1000)
    await asyncio.to_thread(sc.cluster.stop)
    sc.down["cluster"] = now_ms()
    check_ticks("workers = 2 + Redis", sc.cluster_store,
                sc.cluster_log.lines(), sc.launch["cluster"],
                sc.up["cluster"], sc.down["cluster"])


def t_cron_config(be):
    """-t accepts a cron schedule; a bad cron expression (and other bad
    schedules) are refused with FILE:LINE: and the reason."""
    d = tmpdir()
    log = os.path.join(d, "j.log")

    def t(name, queue_text):
        path = os.path.join(d, name + ".cfg")
        with open(path, "w") as f:
            f.write(config("c", log, queue="\n" + queue_text + "\n",
                           extra=be.config()))
        with open(path) as f:
            text = f.read().split("\n")
        return path, text, run_serve(["-t", path])

    path, _, (rc, out, err) = t("good", sched_queue(cron=True))
    eq(rc, 0, "-t of a cron schedule (stderr %r)" % err)
    check("ok" in out + err, "-t says ok: %r" % (out + err))
    for name, bad, word in (
            ("minute", 'cron = "61 * * * *";', "cron"),
            ("fields", 'cron = "* * * *";', "cron"),
            ("name", 'cron = "* * * * frobday";', "cron"),
            ("both", '{ name = "b"; queue = "sched"; cron = "* * * * *"; '
             'every = 5; }', "every")):
        group = bad if bad.startswith("{") else (
            '{ name = "b"; queue = "sched";\n%s }' % bad)
        path, text, (rc, out, err) = t(name, "schedules = (\n%s\n);" % group)
        line = next(i + 1 for i, x in enumerate(text) if bad in x)
        check(rc != 0, "-t accepted %s" % bad)
        check(re.search(r"^%s:%d: .*%s" % (re.escape(path), line, word),
                        err, re.M), "-t of %r: no '%s:%d: ...%s...' in %r"
              % (bad, path, line, word, err + out))


def t_rate_unknown(be):
    """queue.rate_limits naming a queue no plugin processes: pxl-serve
    refuses to start (and -t too), naming it."""
    d = tmpdir()
    path = os.path.join(d, "r.cfg")
    with open(path, "w") as f:
        f.write(config("r", os.path.join(d, "j.log"),
                       queue='rate_limits = [ "rated=10", "nosuch=5" ];',
                       extra=be.config()))
    for args in ([path], ["-t", path]):
        rc, out, err = run_serve(args, timeout=20)
        check(rc != 0, "pxl-serve %s exited %d: %r" % (" ".join(args), rc,
                                                       out + err))
        check(re.search(r"^%s.*queue\.rate_limits.*\"nosuch\"" % re.escape(
            path), err, re.M), "pxl-serve %s: no line naming nosuch in %r"
            % (" ".join(args), err))
        check("rated" not in err, "the good queue named: %r" % err)


# ---- rate limits ------------------------------------------------------------

def most_in_window(times, ms=5000):
    """Most of the (ms) times in any window of ms milliseconds."""
    times = sorted(times)
    best = j = 0
    for i, t in enumerate(times):
        while times[j] <= t - ms:
            j += 1
        best = max(best, i - j + 1)
    return best


def check_rate(what, starts, rows, n):
    eq(len(starts), n, "%s: runs" % what)
    eq(len({x["id"] for x in starts}), n, "%s: distinct jobs run" % what)
    limit = 5 * RATE + 1
    most = most_in_window([x["at"] for x in starts])
    check(most <= limit, "%s: %d starts in 5 s (limit %d a second)"
          % (what, most, RATE))
    most_row = most_in_window([r["started_at"] for r in rows])
    check(most_row <= limit, "%s: %d started_at in 5 s" % (what, most_row))
    most1 = most_in_window([x["at"] for x in starts], 1000)
    check(most1 <= RATE + 1, "%s: %d starts in 1 s" % (what, most1))
    ts = sorted(x["at"] for x in starts)
    span = ts[-1] - ts[0]
    # Not starved either: n jobs at 10/s take (n - 1) / 10 s, plus load.
    check(span <= (n - 1) * 1000 // RATE + 3000 + load_slack(5, 3) * 1000,
          "%s: %d jobs took %d ms to start" % (what, n, span))
    # Measured over 5 s at least: the limit spreads them that far.
    check(span >= 5000, "%s: %d jobs started within %d ms" % (what, n, span))
    tap.diag("%s: %d starts over %d ms, at most %d in any 5 s, %d in any "
             "1 s" % (what, n, span, most, most1))


async def t_rate_one(m):
    """100 jobs of queue rated (rate 10/s, concurrency 8) added at once
    on one process: at most 50 (+1) start in any 5 s."""
    m.need()
    rs = await m.c.add_many([("rated", {"value": i}, None)
                             for i in range(100)])
    ids = {r["id"] for r in rs}
    await wait_log(m.log, lambda ls: len({
        x["id"] for x in ls if x["ev"] == "start" and x["queue"] == "rated"})
        >= 100, 15 + load_slack(5, 5), "100 starts of queue rated")
    await asyncio.sleep(0.3)
    starts = m.log.runs("rated")
    eq({x["id"] for x in starts}, ids, "the ids that ran")
    check_rate("one process", starts, m.store.jobs("rated"), 100)


async def t_rate_two(rp):
    """Two processes, one jobs file, both with rated=10: 30 jobs added on
    each (60), at most 50 (+1) start in any 5 s together; both ran
    some."""
    cs = [await Client.open(s.url()) for s in rp.servers]
    try:
        await asyncio.gather(*(c.add_many([("rated", {"value": i}, None)
                                           for i in range(30)]) for c in cs))
    finally:
        for c in cs:
            await c.close()
    await wait_log(rp.logs, lambda ls: len([
        x for x in ls if x["ev"] == "start" and x["queue"] == "rated"])
        >= 60, 12 + load_slack(5, 5), "60 starts of queue rated")
    await asyncio.sleep(0.3)
    starts = [x for g in rp.logs for x in g.runs("rated")]
    by = [len(g.runs("rated")) for g in rp.logs]
    check(all(by), "runs by process: %r (one took none)" % by)
    check_rate("two processes", starts, rp.store.jobs("rated"), 60)
    tap.diag("two processes: %r runs each" % by)


# ---- transactions -----------------------------------------------------------

class Main:
    """The server with an SQLite database (jt_rows in it, and the jobs
    with SQLite, the outbox with Redis), the rate limit and testkit's
    metrics route."""

    def __init__(self, be):
        d = tmpdir()
        self.be = be
        self.log = JobLog(os.path.join(d, "jobtest.log"))
        self.db = os.path.join(d, "app.db")
        self.server = Server(config(
            "main", self.log.path,
            queue='rate_limits = [ "rated=%d" ];' % RATE,
            extra='database = { path = "%s"; };\n%s'
            % (self.db, be.config())), name="main")
        self.store = be.store("main", self.db)
        self.c = None

    def need(self):
        check(self.c is not None, "the main server did not start (above)")


def rows_named(db, name):
    return [r["name"] for r in table(db, "WHERE name = ?", (name,),
                                     name="jt_rows")]


def jobs_with(store, value):
    return [r for r in store.jobs("work")
            if json.loads(r["payload"]).get("value") == value]


def outbox(db, id_):
    """With Redis: the rows of job id_ in the app database's outbox."""
    return table(db, "WHERE id = ?", (id_,), name="pxl_job_outbox")


def check_tx_reply(r, commit, what):
    check(isinstance(r, dict), "%s: reply %r" % (what, r))
    eq(set(r), {"queue", "commit", "id", "existed", "addError", "rowError",
                "error"}, "%s: reply keys" % what)
    eq((r["commit"], r["addError"], r["rowError"], r["error"], r["existed"]),
       (commit, None, None, None, False), "%s: outcome" % what)


async def t_tx_rollback(m):
    """Row and job added, then the transaction rolls back: neither is
    there, and the job never runs (waited 1 s: queue work is idle)."""
    m.need()
    r = await m.c.response("job", "addtx", {
        "queue": "work", "payload": {"value": "rolled"}, "row": "rolled",
        "commit": False, "options": {"id": "tx-rolled"}})
    check_tx_reply(r, False, "rollback")
    eq(r["id"], "tx-rolled", "id")
    eq(rows_named(m.db, "rolled"), [], "the row after the rollback")
    eq(m.store.jobs("work", ["tx-rolled"]), [], "the job after the "
       "rollback")
    await asyncio.sleep(1.0)
    eq(m.log.runs("work", "tx-rolled"), [], "runs of the rolled back job")
    eq(m.store.jobs("work", ["tx-rolled"]), [], "the job 1 s later")
    if m.be.redis is not None:
        eq(outbox(m.db, "tx-rolled"), [], "the outbox after the rollback")
    # The id is free: a committed job under it runs.
    r = await m.c.response("job", "addtx", {
        "queue": "work", "payload": {"value": "rolled2"}, "row": "rolled",
        "commit": True, "options": {"id": "tx-rolled"}})
    check_tx_reply(r, True, "the same id, committed")
    await wait_log(m.log, lambda ls: any(
        x["ev"] == "end" and x["id"] == "tx-rolled" for x in ls), 10,
        "tx-rolled's run after its commit")
    eq([x["payload"] for x in m.log.runs("work", "tx-rolled")],
       [{"value": "rolled2"}], "runs under the id")


async def t_tx_commit(m):
    """The transaction stays open 800 ms after the job is added: no run,
    no job or row visible to another connection; then it commits: both
    appear, and the job runs once, after the commit."""
    m.need()
    t0 = now_ms()
    fut = await m.c.send("job", "addtx", {
        "queue": "work", "payload": {"value": "committed"},
        "row": "committed", "commit": True, "commitAfterMs": 800})
    await asyncio.sleep(0.5)
    eq(rows_named(m.db, "committed"), [], "the row before the commit")
    eq(jobs_with(m.store, "committed"), [], "the job before the commit")
    eq([x for x in m.log.lines() if x["ev"] == "start"
        and x["payload"] == {"value": "committed"}], [], "runs before the "
       "commit")
    f = await asyncio.wait_for(fut, 20)
    r = f.get("response")
    check_tx_reply(r, True, "commit")
    tx = [x for x in m.log.lines() if x["ev"] == "tx" and x["id"] == r["id"]]
    eq(len(tx), 1, "tx log lines")
    check(tx[0]["at"] - t0 >= 800, "committed %d ms after the request"
          % (tx[0]["at"] - t0))
    eq(rows_named(m.db, "committed"), ["committed"], "the row")
    # With Redis the outbox moves it after the commit: a moment later.
    found = await poll(lambda: asyncio.to_thread(jobs_with, m.store,
                                                 "committed"),
                       timeout=5, what="the committed job stored")
    eq([j["id"] for j in found], [r["id"]], "the job")
    await wait_log(m.log, lambda ls: any(
        x["ev"] == "jobCompleted" and x["msg"]["id"] == r["id"] for x in ls),
        10, "the committed job completed")
    await asyncio.sleep(0.3)
    runs = m.log.runs("work", r["id"])
    eq(len(runs), 1, "runs of the committed job")
    # The commit's callback comes after the commit itself: the run may
    # log before tx, never before the transaction could have committed.
    check(runs[0]["at"] >= t0 + 800, "the job ran %d ms after the request, "
          "before its transaction committed (800 ms)" % (runs[0]["at"] - t0))
    row = m.store.job("work", r["id"])
    eq((row["state"], row["attempt"]), ("completed", 1), "stored")
    if m.be.redis is not None:
        # Deleted once Redis answered the move: a moment after the run.
        await poll(lambda: asyncio.to_thread(
            lambda: outbox(m.db, r["id"]) == []), timeout=3,
            what="the outbox to empty after the move")


async def t_tx_kill(srv, log, db, store):
    """A job committed with its row (due 500 ms later), kill -9 right
    after the reply: after a restart both are there and the job runs
    once. With Redis the job is then in Redis or still in the outbox,
    once."""
    make_rows_table(db)
    await asyncio.to_thread(srv.start)
    c = await Client.open(srv.url())
    try:
        r = await c.response("job", "addtx", {
            "queue": "work", "payload": {"value": "k"}, "row": "k",
            "commit": True, "options": {"id": "tx-k", "delayMs": 500}})
        pid = srv.proc.pid
        srv.proc.kill()
        killed = now_ms()
        srv.proc.wait(10)
    finally:
        await c.close()
    check_tx_reply(r, True, "commit before the kill")
    eq(log.runs("work", "tx-k"), [], "runs before the kill")
    eq(rows_named(db, "k"), ["k"], "the row after the kill")
    rows = [(x["state"], x["attempt"]) for x in store.jobs("work", ["tx-k"])]
    if isinstance(store, RedisStore):
        rows += [("outbox", 0)] * len(outbox(db, "tx-k"))
        # Killed between the move and the row's delete, it is in both:
        # the restarted server moves it again, which adds nothing.
        check(rows in ([("waiting", 0)], [("outbox", 0)],
                       [("waiting", 0), ("outbox", 0)]), "tx-k after the "
              "kill, in Redis or in the outbox (or both, mid-move): %r"
              % rows)
    else:
        eq(rows, [("waiting", 0)], "the job after the kill")
    await asyncio.to_thread(srv.start)
    await wait_log(log, lambda ls: any(
        x["ev"] == "jobCompleted" and x["msg"]["id"] == "tx-k" for x in ls),
        10, "tx-k completed after the restart")
    await asyncio.sleep(0.5)
    runs = log.runs("work", "tx-k")
    eq([x["attempt"] for x in runs], [1], "runs of tx-k")
    check(runs[0]["pid"] != pid, "ran on the killed server")
    eq([(x["state"], x["attempt"]) for x in store.jobs("work", ["tx-k"])],
       [("completed", 1)], "tx-k stored")
    tap.diag("kill -9 after the commit: ran %d ms after the kill (%s)"
             % (runs[0]["at"] - killed, rows))


async def t_tx_no_database(srv):
    """Without a database group there is no transaction: job/addtx gets
    NULL from pxl_db_begin, and pxl_job_add_tx(NULL) refuses."""
    c = await Client.open(srv.url())
    try:
        f = await c.call("job", "addtx", {"queue": "work", "payload": {},
                                          "row": "x", "commit": True})
    finally:
        await c.close()
    eq(f.get("type"), "error", "reply without a database: %r" % f)
    text = f["data"]["error"]
    check(text.startswith("pxl_db_begin: no transaction; "
                          "pxl_job_add_tx(NULL): "), "error %r" % text)
    tap.diag("without a database: %s" % text)


async def t_tx_postgresql(pg, srv):
    """With PostgreSQL the jobs are in a file of their own, so no
    transaction holds both: pxl_job_add_tx refuses (PXL_EINVAL), says
    why in the log, and the transaction (with the row) is rolled back."""
    await asyncio.to_thread(pg.start)
    pg.psql("CREATE TABLE IF NOT EXISTS jt_rows (name text PRIMARY KEY); "
            "GRANT ALL ON jt_rows TO pxl")
    with open(srv.cfg, "a") as f:
        f.write(pg.database_group() + "\n")
    await asyncio.to_thread(srv.start)
    c = await Client.open(srv.url())
    try:
        before = len(srv.log().splitlines())
        f = await c.call("job", "addtx", {"queue": "work", "payload": {},
                                          "row": "pg", "commit": True})
        eq(f.get("type"), "error", "reply with PostgreSQL: %r" % f)
        eq(f["data"]["error"], "pxl_job_add_tx: invalid argument",
           "the refusal")
        new = srv.log().splitlines()[before:]
        check(any("pxl_job_add_tx" in x for x in new), "no log line says "
              "why: %r" % new)
        await asyncio.sleep(0.5)
        eq(pg.psql("SELECT count(*) FROM jt_rows"), "0",
           "rows in PostgreSQL")
        eq(pg_jobs(srv), [], "jobs in the jobs file")
    finally:
        await c.close()


def pg_jobs(srv):
    path = os.path.join(srv.dir, "pg-jobs.db")
    return table(path) if os.path.exists(path) else []


# ---- metrics ----------------------------------------------------------------

QUEUE_KEYS = {"waiting", "delayed", "active", "completed", "dead", "running",
              "processed", "failed", "retried", "died", "waitMs", "runMs"}
COUNTS = ("waiting", "delayed", "active", "completed", "dead", "running",
          "processed", "failed", "retried", "died")


async def t_metrics(m):
    """pxl_metrics() "queues" (testkit's test/metrics) after: queue flaky
    2 jobs completing, 1 completing on its 2nd attempt, 1 dead after 2;
    work 1 held (active) and 1 behind it (waiting), with the jobs the
    transaction cases completed (tx-rolled, the committed one); delay 1 due
    in a minute (delayed); rated the 100 rate-limited jobs, which waited
    up to ~10 s."""
    m.need()
    c = m.c
    # What the transaction cases completed in queue work.
    tx_done = len({x["msg"]["id"] for x in m.log.lines()
                   if x["ev"] == "jobCompleted"
                   and x["msg"]["queue"] == "work"})
    await c.add_many([
        ("flaky", {"value": 1}, None), ("flaky", {"value": 2}, None),
        ("flaky", {"failUntil": 2}, {"backoffMs": 100}),
        ("flaky", {"failUntil": 99}, {"attempts": 2, "backoffMs": 100}),
        ("work", {"how": "hold", "hold": "m"}, {"id": "m-held"}),
        ("delay", {"value": "later"}, {"delayMs": 60000})])
    await wait_log(m.log, lambda ls: any(
        x["ev"] == "start" and x["id"] == "m-held" for x in ls), 10,
        "m-held's start")
    await c.add_many([("work", {"value": "behind"}, {"id": "m-behind"})])
    want = {
        "flaky": dict(waiting=0, delayed=0, active=0, completed=3, dead=1,
                      running=0, processed=3, failed=3, retried=2, died=1),
        "work": dict(waiting=1, delayed=0, active=1, completed=tx_done,
                     dead=0, running=1, processed=tx_done, failed=0,
                     retried=0, died=0),
        "delay": dict(waiting=0, delayed=1, active=0, completed=0, dead=0,
                      running=0, processed=0, failed=0, retried=0, died=0),
        "rated": dict(waiting=0, delayed=0, active=0, completed=100, dead=0,
                      running=0, processed=100, failed=0, retried=0,
                      died=0)}
    last = {}

    async def settled():
        qs = (await c.response("test", "metrics", None)).get("queues")
        last["q"] = qs
        if not isinstance(qs, dict):
            return None
        got = {q: {k: qs.get(q, {}).get(k) for k in COUNTS} for q in want}
        return qs if got == want else None
    try:
        qs = await poll(settled, timeout=6, what="the counts")
    except AssertionError:
        got = last.get("q")
        check(isinstance(got, dict), "no queues object: %r" % got)
        for q in want:
            eq({k: got.get(q, {}).get(k) for k in COUNTS}, want[q],
               "queue %s" % q)
        raise
    # Every queue jobtest processes, none else, each with the keys.
    eq(set(qs), {"work", "many", "flaky", "slow", "progress", "delay",
                 "keep", "rated", "sched"}, "queues")
    for q, o in qs.items():
        eq(set(o), QUEUE_KEYS, "keys of queue %s" % q)
        for k in COUNTS:
            check(isinstance(o[k], int) and o[k] >= 0, "%s.%s = %r"
                  % (q, k, o[k]))
        for h in ("waitMs", "runMs"):
            eq(set(o[h]), {"p50", "p99", "max"}, "keys of %s.%s" % (q, h))
            v = o[h]
            check(all(isinstance(v[k], int) for k in v)
                  and 0 <= v["p50"] <= v["p99"] <= v["max"],
                  "%s.%s = %r" % (q, h, v))
    for q in ("many", "slow", "progress", "keep", "sched"):
        eq(qs[q]["waitMs"], {"p50": 0, "p99": 0, "max": 0},
           "waitMs of %s (no job ran)" % q)
    # rated: 100 jobs at 10/s, all due at once: the last waited ~9.9 s,
    # the median ~5 s.
    w = qs["rated"]["waitMs"]
    check(8000 <= w["max"] <= 30000, "rated waitMs max %r" % w)
    check(2500 <= w["p50"] <= 8000, "rated waitMs p50 %r" % w)
    check(w["p99"] >= 8000, "rated waitMs p99 %r" % w)
    # work: tx-rolled and the committed job ran at once (well under 5 s),
    # and so did m-held.
    check(qs["work"]["waitMs"]["max"] <= 5000, "work waitMs %r"
          % qs["work"]["waitMs"])
    tap.diag("metrics: flaky %r" % {k: qs["flaky"][k] for k in QUEUE_KEYS})
    tap.diag("metrics: rated waitMs %r runMs %r" % (w, qs["rated"]["runMs"]))
    eq(await c.response("job", "release", {"hold": "m"}), 1, "released")
    await wait_log(m.log, lambda ls: any(
        x["ev"] == "jobCompleted" and x["msg"]["id"] == "m-behind"
        for x in ls), 10, "m-behind completed")

    async def after():
        qs = (await c.response("test", "metrics", None))["queues"]
        w = qs["work"]
        return qs if (w["running"], w["active"], w["waiting"],
                      w["processed"]) == (0, 0, 0, tx_done + 2) else None
    qs = await poll(after, timeout=5, what=lambda: "work after the release: "
                    "%r" % last)
    check(qs["work"]["runMs"]["max"] >= 100, "work runMs (a held run): %r"
          % qs["work"]["runMs"])


# ---- the file ---------------------------------------------------------------

class RatePair:
    """Two processes of app "rate" sharing the jobs (one directory's
    rate-jobs.db, or one Redis), both with rated=10."""

    def __init__(self, be):
        d = tmpdir()
        self.logs = [JobLog(os.path.join(d, "r%d.log" % i)) for i in (1, 2)]
        self.servers = [server_in(d, "rate%d" % (i + 1), config(
            "rate", self.logs[i].path,
            queue='rate_limits = [ "rated=%d" ];' % RATE,
            extra=be.config())) for i in (0, 1)]
        self.store = be.store("rate", os.path.join(d, "rate-jobs.db"))

    def start(self):
        for s in self.servers:
            s.start()


async def amain(be):
    say = (be.name + ": %s").__mod__
    sqlite = be.redis is None
    if not sqlite:
        tap.case(say("redis-server starts"), be.start)
    sc = Sched(be)
    m = Main(be)
    rp = RatePair(be)
    d = tmpdir()
    kill_log = JobLog(os.path.join(d, "kill.log"))
    kill_db = os.path.join(d, "kill.db")
    kill = Server(config("kill", kill_log.path,
                         extra='database = { path = "%s"; };\n%s'
                         % (kill_db, be.config())), name="kill")
    pg = PG()
    pg_srv = Server(config("pg", os.path.join(d, "pg.log")), name="pg")
    servers = sc.pair + [m.server] + rp.servers + [kill]
    if sqlite:
        servers += [pg_srv]

    tap.case(say("schedule servers start: two processes on one directory"
                 + ("" if sqlite else ", a cluster of 2 workers")), sc.start)
    if sc.cluster is not None:
        servers.append(sc.cluster)

    def start_main():
        make_rows_table(m.db)
        m.server.start()
    if tap.case(say("the main server starts (SQLite database, rated=10)"),
                start_main):
        m.c = await Client.open(m.server.url())
    tap.case(say("-t accepts a cron schedule; a bad cron is refused with "
                 "FILE:LINE"), t_cron_config, be)
    tap.case(say("a rate limit naming a queue no plugin processes is "
                 "refused at start"), t_rate_unknown, be)
    await tap.acase(say("no database: pxl_job_add_tx has no transaction"),
                    t_tx_no_database, sc.pair[0]
                    if sc.pair[0].running() else m.server)
    await tap.acase(say("a transaction that rolls back: no row, no job, "
                        "no run"), t_tx_rollback, m)
    await tap.acase(say("a transaction that commits: row and job appear "
                        "together, the job runs once after the commit"),
                    t_tx_commit, m)
    await tap.acase(say("schedule every 1 s, two processes sharing the "
                        "jobs: each tick's job once, run once, consecutive "
                        "seconds; cron ticks only on whole minutes"),
                    t_sched_pair, sc, timeout=30)
    if not sqlite:
        await tap.acase(say("schedule every 1 s, workers = 2: each tick's "
                            "job once, run once, consecutive seconds"),
                        t_sched_cluster, sc, timeout=30)

    # Both rate cases at once (separate files, ~10 s each) to save time.
    two = {}

    async def rate_one():
        await asyncio.to_thread(rp.start)
        two["task"] = asyncio.ensure_future(t_rate_two(rp))
        await t_rate_one(m)

    async def rate_two():
        check("task" in two, "the two processes did not start (above)")
        await two["task"]
    await tap.acase(say("rate limit 10/s, one process: 100 jobs, at most 50 "
                        "(+1) start in any 5 s, 10 (+1) in any 1 s"),
                    rate_one, timeout=45)
    await tap.acase(say("rate limit 10/s shared by two processes: at most "
                        "50 (+1) start in any 5 s together, 10 (+1) in any "
                        "1 s"), rate_two)
    await tap.acase(say("pxl_metrics() queues: keys, counts, counters, wait "
                        "and run times"), t_metrics, m)
    if m.c is not None:
        await m.c.close()
    await tap.acase(say("kill -9 right after a commit: after a restart the "
                        "job runs once"), t_tx_kill, kill, kill_log, kill_db,
                    be.store("kill", kill_db), timeout=30)
    if sqlite:
        await tap.acase(say("PostgreSQL: pxl_job_add_tx refuses "
                            "(PXL_EINVAL)"), t_tx_postgresql, pg, pg_srv,
                        timeout=60)
    await astop_servers(tap, servers, name=say("%s: server exits 0, clean "
                                               "log"))
    if sqlite:
        tap.case(say("PostgreSQL stops"), pg.kill)
    else:
        tap.case(say("redis-server stops"), be.stop)


def run(name, deadline=150):
    """Run the file's cases with the jobs in back end name."""
    tap.deadline(deadline)
    tap.run(lambda: amain(backend(name)))


if __name__ == "__main__":
    run("sqlite")
