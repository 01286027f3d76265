"""
test_queue_outbox - pxl_job_add_tx with the jobs in Redis: the job is a
row of pxl_job_outbox in the app's database (a real PostgreSQL, started
here with tests/pg/pgctl), written in the transaction, and moved to Redis
(a real redis-server) after the commit. Through the jobtest plugin
(tests/plugins/jobtest.c): its job/addtx route begins a transaction,
inserts a row of its own (jt_rows), adds the job with pxl_job_add_tx and
commits (after commitAfterMs) or rolls back; its processors log every run
to a file that survives kill -9.

Covered: a rolled back transaction leaves neither the row, nor an outbox
row, nor the job in Redis, and the job never runs; a transaction kept
open 3 s shows nothing outside it (no row, no job in Redis, no run),
then commits: the job runs once, after the commit, and the outbox is
empty again; kill -9 of pxl-serve right after a commit: after a restart
the job has run exactly once; a commit while Redis is down succeeds (the
job waits in the outbox), and once Redis and pxl-serve are back the job
runs once.
"""
import asyncio
import os
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from pxltest import TAP, Server, astop_servers, check, eq  # noqa: E402
from pxljobs import JobLog, PipelinedClient, queue_config  # noqa: E402
from pxljobs import wait_log  # noqa: E402
from pxlpg import PG  # noqa: E402
from pxlredis import RedisServer, redis_group  # noqa: E402
from pxlws import poll  # noqa: E402

tap = TAP()
tap.deadline(150)

APP = "obx"


def now_ms():
    return int(time.time() * 1000)


class Client(PipelinedClient):
    async def response(self, type_, action, data, timeout=20):
        f = await self.call(type_, action, data, timeout)
        check("response" in f, "%s/%s %r: %r" % (type_, action, data, f))
        return f["response"]


class Setup:
    def __init__(self):
        self.pg = PG()
        self.redis = RedisServer(name="redis")
        self.log = None
        self.srv = None

    def start(self):
        self.pg.start()
        self.pg.psql("CREATE TABLE IF NOT EXISTS jt_rows (name text PRIMARY "
                     "KEY); GRANT ALL ON jt_rows TO pxl")
        self.redis.start()
        self.log = JobLog(os.path.join(self.redis.dir, "jobtest.log"))
        self.srv = Server(queue_config(
            APP, self.log.path, queue="stalled_after = 2;",
            extra="%s\n%s" % (self.pg.database_group(), redis_group(
                {"host": "127.0.0.1", "port": self.redis.port}))),
            name=APP)
        self.srv.start()

    def need(self):
        check(self.srv is not None and self.srv.port is not None,
              "the servers did not start (above)")

    def job(self, id_):
        """The job's hash in Redis ({} when there is none)."""
        return self.redis.command("HGETALL", "pxl:%s:q:work:j:%s" % (APP, id_))

    def rows(self, name):
        return self.pg.psql("SELECT count(*) FROM jt_rows WHERE name = '%s'"
                            % name)

    def outbox(self):
        return self.pg.psql("SELECT count(*) FROM pxl_job_outbox")


def check_tx_reply(r, commit, what):
    check(isinstance(r, dict), "%s: reply %r" % (what, r))
    eq((r.get("commit"), r.get("addError"), r.get("rowError"), r.get("error"),
        r.get("existed")), (commit, None, None, None, False),
       "%s: outcome %r" % (what, r))


def as_dict(flat):
    if isinstance(flat, dict):
        return flat
    return dict(zip(flat[::2], flat[1::2])) if flat else {}


async def completed(s, id_, timeout=10):
    await wait_log(s.log, lambda ls: any(
        x["ev"] == "jobCompleted" and x["msg"]["id"] == id_ for x in ls),
        timeout, "%s completed" % id_)


async def outbox_empties(s, timeout=3):
    """The outbox's rows are deleted once Redis has the jobs: after
    the add's answer, so a moment after the job may already have run."""
    async def emptied():
        return s.outbox() == "0"
    await poll(emptied, timeout=timeout, what="the outbox to empty")


async def addtx(s, name, commit):
    """job/addtx on a connection of its own: row name, job ob-NAME in
    queue work; its reply."""
    c = await Client.open(s.srv.url())
    try:
        return await c.response("job", "addtx", {
            "queue": "work", "payload": {"value": name}, "row": name,
            "commit": commit, "options": {"id": "ob-" + name}})
    finally:
        await c.close()


async def t_rollback(s):
    """Rolled back: no row, no outbox row, no job in Redis, no run."""
    s.need()
    r = await addtx(s, "rolled", False)
    check_tx_reply(r, False, "rollback")
    await asyncio.sleep(1.2)  # longer than the outbox sweep
    eq(s.rows("rolled"), "0", "rows after the rollback")
    eq(s.outbox(), "0", "outbox rows after the rollback")
    eq(as_dict(s.job("ob-rolled")), {}, "the job in Redis")
    eq(s.log.runs("work", "ob-rolled"), [], "runs of the rolled back job")


# How long t_commit keeps its transaction open: the checks "before the
# commit" run 0.5 s in, and must run before it even on a loaded machine.
OPEN_MS = 3000


async def t_commit(s):
    """Open OPEN_MS: nothing outside it; committed: runs once, after."""
    s.need()
    c = await Client.open(s.srv.url())
    try:
        t0 = now_ms()
        fut = await c.send("job", "addtx", {
            "queue": "work", "payload": {"value": "committed"},
            "row": "committed", "commit": True, "commitAfterMs": OPEN_MS,
            "options": {"id": "ob-commit"}})
        await asyncio.sleep(0.5)
        eq(s.rows("committed"), "0", "the row before the commit")
        eq(s.outbox(), "0", "outbox rows seen outside the transaction")
        eq(as_dict(s.job("ob-commit")), {}, "the job in Redis before the "
           "commit")
        eq(s.log.runs("work", "ob-commit"), [], "runs before the commit")
        f = await asyncio.wait_for(fut, 20)
    finally:
        await c.close()
    check_tx_reply(f.get("response"), True, "commit")
    await completed(s, "ob-commit")
    runs = s.log.runs("work", "ob-commit")
    eq(len(runs), 1, "runs of the committed job")
    check(runs[0]["at"] >= t0 + OPEN_MS, "ran %d ms after the request, "
          "before the commit (%d ms)" % (runs[0]["at"] - t0, OPEN_MS))
    tap.diag("committed job started %d ms after the commit"
             % (runs[0]["at"] - t0 - OPEN_MS))
    eq(s.rows("committed"), "1", "the row")
    await outbox_empties(s)
    eq(as_dict(s.job("ob-commit")).get("state"), "completed", "state")


async def t_kill(s):
    """kill -9 right after the commit's reply: runs once after a restart
    (moved before the kill or by the restarted server's sweep)."""
    s.need()
    c = await Client.open(s.srv.url())
    try:
        r = await c.response("job", "addtx", {
            "queue": "work", "payload": {"value": "k"}, "row": "k",
            "commit": True, "options": {"id": "ob-kill", "delayMs": 300}})
        s.srv.proc.kill()
        s.srv.proc.wait(10)
    finally:
        await c.close()
    check_tx_reply(r, True, "commit before the kill")
    eq(s.rows("k"), "1", "the row after the kill")
    tap.diag("at the kill: %s outbox row(s), job %s in Redis"
             % (s.outbox(), "already" if as_dict(s.job("ob-kill"))
                else "not yet"))
    await asyncio.to_thread(s.srv.start)
    await completed(s, "ob-kill")
    # A row the killed server was moving waits out its lease (2 s), then
    # the restarted one adds it again (it exists: nothing runs) and
    # deletes it.
    await outbox_empties(s, timeout=6)
    eq([x["attempt"] for x in s.log.runs("work", "ob-kill")], [1],
       "runs of the job")


async def t_redis_down(s):
    """Redis down at the commit: the transaction commits, the job waits
    in the outbox through a kill -9; back up, it runs once."""
    s.need()
    s.redis.stop()
    r = await addtx(s, "down", True)
    check_tx_reply(r, True, "commit while Redis is down")
    await asyncio.sleep(1.2)
    eq(s.outbox(), "1", "outbox rows while Redis is down")
    s.srv.proc.kill()
    s.srv.proc.wait(10)
    s.redis.start()
    await asyncio.to_thread(s.srv.start)
    await completed(s, "ob-down")
    await asyncio.sleep(0.5)
    eq([x["attempt"] for x in s.log.runs("work", "ob-down")], [1],
       "runs of the job")
    await outbox_empties(s)


async def amain():
    s = Setup()
    await tap.acase("PostgreSQL, redis-server and pxl-serve start",
                    asyncio.to_thread, s.start, timeout=90)
    await tap.acase("rolled back: neither the row nor the job, no run",
                    t_rollback, s)
    await tap.acase("committed after 3 s: nothing visible before, the "
                    "job runs once after the commit", t_commit, s)
    await tap.acase("kill -9 right after a commit: the job runs once",
                    t_kill, s, timeout=30)
    await tap.acase("a commit while Redis is down waits in the outbox and "
                    "runs once when Redis is back", t_redis_down, s,
                    timeout=30)
    servers = [x for x in (s.srv,) if x is not None]
    await astop_servers(tap, servers, name="%s: server exits 0, clean log")
    tap.case("redis-server stops", s.redis.stop)
    tap.case("PostgreSQL stops", s.pg.destroy)


tap.run(amain)
