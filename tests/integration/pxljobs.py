"""
pxljobs - what the queue tests share (stdlib + pxltest/pxlws/pxlredis):
the jobtest plugin's log (tests/plugins/jobtest.c writes one JSON object
a line, which survives kill -9), the two back ends a test file runs on
(backend("sqlite") or backend("redis")) and the jobs they store, read
outside pxl through one interface (JobStore), app files that load
jobtest, and a client whose requests may be pipelined (replies matched
by requestId).

A JobStore gives each job as the same dict on both back ends:
  queue, id, state, payload, priority, run_at, attempt, attempts,
  backoff_ms, backoff_exp, timeout_ms, keep, owner, lease_until,
  progress, result, error, created_at, started_at, finished_at
(payload, progress, result: JSON text or None; times: ms since the
epoch or None), plus store_state, the state as the store has it.
state is named as in the SQLite table (framework/pxl_queue_sql.h):
waiting (due or not: run_at says when), active, completed, dead. Redis
(framework/pxl_queue_lua.h) calls a job not yet due "delayed"; its
lease is its stream entry's last delivery (XINFO STREAM FULL) plus
queue.stalled_after, the time after which another worker may claim it.
"""
import asyncio
import itertools
import json
import sqlite3

from pxltest import app_config, check, eq
from pxlws import close_all, connect, poll

_rid = itertools.count(1)


class JobLog:
    """jobtest's log file: one JSON object a line (see jobtest.c)."""

    def __init__(self, path):
        self.path = path

    def lines(self):
        try:
            with open(self.path, "rb") as f:
                data = f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return []
        # A line the plugin is still writing has no newline yet: not read.
        return [json.loads(x) for x in data.split("\n")[:-1] if x]

    def runs(self, queue, id_=None, ev="start"):
        return [x for x in self.lines() if x["ev"] == ev
                and x.get("queue") == queue
                and (id_ is None or x.get("id") == id_)]

    def events(self, channel, queue, id_=None):
        return [x for x in self.lines() if x["ev"] == channel
                and x["msg"].get("queue") == queue
                and (id_ is None or x["msg"].get("id") == id_)]


async def wait_log(logs, pred, timeout, what):
    """Poll the logs (one JobLog or several) until pred(lines) is true;
    return its value."""
    if isinstance(logs, JobLog):
        logs = [logs]

    async def once():
        return pred([x for g in logs for x in g.lines()])
    return await poll(once, timeout=timeout, what=what)


def table(path, where="", params=(), name="pxl_jobs"):
    """A table's rows as dicts (read outside pxl): the jobs by default."""
    con = sqlite3.connect(path, timeout=10)
    try:
        con.row_factory = sqlite3.Row
        return [dict(r) for r in con.execute(
            "SELECT * FROM %s %s" % (name, where), params).fetchall()]
    finally:
        con.close()


# ---- the jobs, read outside pxl -------------------------------------------

JOB_KEYS = ("queue", "id", "state", "payload", "priority", "run_at",
            "attempt", "attempts", "backoff_ms", "backoff_exp",
            "timeout_ms", "keep", "owner", "lease_until", "progress",
            "result", "error", "created_at", "started_at", "finished_at",
            "store_state")


class JobStore:
    """The jobs of one app as one back end stores them (see the top)."""

    def jobs(self, queue=None, ids=None):
        """Every job (of queue; with an id in ids), as dicts."""
        raise NotImplementedError

    def job(self, queue, id_):
        """The one job queue/id_ (a failure when there is none)."""
        rows = self.jobs(queue, [id_])
        eq(len(rows), 1, "stored jobs %s/%s (%s)" % (queue, id_, self))
        return rows[0]


class SqliteStore(JobStore):
    """The pxl_jobs table of an SQLite file (the app's database, or
    queue.path)."""

    def __init__(self, path):
        self.path = path

    def __str__(self):
        return self.path

    def jobs(self, queue=None, ids=None):
        where, params = [], []
        if queue is not None:
            where.append("queue = ?")
            params.append(queue)
        if ids is not None:
            ids = list(ids)
            if not ids:
                return []
            where.append("id IN (%s)" % ",".join("?" * len(ids)))
            params += ids
        rows = table(self.path, ("WHERE " + " AND ".join(where))
                     if where else "", params)
        for r in rows:
            r["store_state"] = r["state"]
        return rows


REDIS_INTS = ("priority", "run_at", "attempt", "attempts", "backoff_ms",
              "backoff_exp", "timeout_ms", "keep", "created_at",
              "started_at", "finished_at")


class RedisStore(JobStore):
    """The jobs of app in Redis (pxl:APP:q:QUEUE:j:ID hashes, read with
    pxlredis's client). stalled_after: the app's queue.stalled_after
    (s), for lease_until."""

    def __init__(self, redis, app, stalled_after=30):
        self.redis = redis
        self.app = app
        self.stalled_after = stalled_after
        self.prefix = "pxl:%s:" % app

    def __str__(self):
        return "Redis :%d %s" % (self.redis.port, self.prefix)

    def qkey(self, queue):
        return "%sq:%s:" % (self.prefix, queue)

    def keys(self, pattern):
        """Every key matching pattern (SCAN)."""
        out, cursor = [], "0"
        with self.redis.client(timeout=30) as c:
            while True:
                cursor, batch = c.command("SCAN", cursor, "MATCH", pattern,
                                          "COUNT", 1000)
                out += batch
                if cursor == "0":
                    return sorted(set(out))

    def _leases(self, c, level_keys):
        """{(stream key, entry): last delivery (ms)} of the pending
        entries of those streams."""
        out = {}
        for k in level_keys:
            info = c.command("XINFO", "STREAM", k, "FULL", "COUNT", 0,
                             errors_ok=True)
            if not isinstance(info, list):
                continue
            info = dict(zip(info[::2], info[1::2]))
            for g in info.get("groups") or []:
                g = dict(zip(g[::2], g[1::2]))
                if g.get("name") != "pxl":
                    continue
                for p in g.get("pending") or []:
                    out[(k, p[0])] = p[2]  # entry, consumer, delivered
        return out

    def jobs(self, queue=None, ids=None):
        if ids is not None:
            keys = [self.qkey(queue) + "j:" + i for i in ids] \
                if queue is not None else [
                    k for k in self.keys(self.prefix + "q:*:j:*")
                    if self._split(k)[1] in set(ids)]
        else:
            keys = self.keys((self.qkey(queue) if queue is not None
                              else self.prefix + "q:*:") + "j:*")
        out = []
        with self.redis.client(timeout=30) as c:
            for i in range(0, len(keys), 500):
                part = keys[i:i + 500]
                for k in part:
                    c.send("HGETALL", k)
                for k in part:
                    r = c.read_reply()
                    check(isinstance(r, list), "HGETALL %s: %r" % (k, r))
                    if r:
                        out.append(self._job(k, dict(zip(r[::2], r[1::2]))))
            active = {(self.qkey(j["queue"]) + "s:" + j["_level"])
                      for j in out if j["store_state"] == "active"}
            leases = self._leases(c, sorted(active))
        for j in out:
            d = leases.get((self.qkey(j["queue"]) + "s:" + j.pop("_level"),
                            j.pop("_entry")))
            if j["store_state"] == "active" and d is not None:
                j["lease_until"] = d + self.stalled_after * 1000
        return out

    def _split(self, key):
        """(queue, id) of a job's key."""
        rest = key[len(self.prefix) + 2:]
        queue, _, jid = rest.partition(":j:")
        return queue, jid

    def _job(self, key, h):
        queue, jid = self._split(key)
        j = {k: None for k in JOB_KEYS}
        j.update(queue=queue, id=jid, store_state=h.get("state"))
        for k in ("payload", "owner", "progress", "result", "error"):
            j[k] = h.get(k)
        for k in REDIS_INTS:
            j[k] = int(h[k]) if h.get(k) not in (None, "") else None
        j["state"] = "waiting" if h.get("state") == "delayed" \
            else h.get("state")
        # The stream a waiting or active job's entry is in: its level.
        j["_level"] = str(j["priority"] or 0)
        j["_entry"] = h.get("entry")
        return j


# ---- the back ends ---------------------------------------------------------

class SqliteBackend:
    """Jobs in SQLite: the app's database, else NAME-jobs.db next to the
    app file (or queue.path)."""
    name = "sqlite"
    redis = None

    def start(self):
        pass

    def stop(self):
        pass

    def config(self, **overrides):
        """What the app file adds for this back end: nothing."""
        return ""

    def store(self, app, path, stalled_after=30):
        """The jobs of app, whose jobs live in the SQLite file path."""
        return SqliteStore(path)


class RedisBackend:
    """Jobs in Redis: a redis group in the app file, one redis-server
    (pxlredis.RedisServer, its own port) for the test file."""
    name = "redis"

    def __init__(self):
        from pxlredis import RedisServer
        self.redis = RedisServer(name="redis-jobs")

    def start(self):
        self.redis.start()

    def stop(self):
        self.redis.stop()

    def config(self, **overrides):
        return self.redis.config(**overrides)

    def store(self, app, path=None, stalled_after=30):
        return RedisStore(self.redis, app, stalled_after)


def backend(name):
    """backend("sqlite") or backend("redis")."""
    if name == "redis":
        return RedisBackend()
    check(name == "sqlite", "no back end %r" % name)
    return SqliteBackend()


def plugin_entry(log_path):
    return '{ path = "jobtest"; settings = { log = "%s"; }; }' % log_path


def queue_config(name, log_path, queue="", extra="", workers=None):
    """An app file loading echo, testkit and jobtest (logging to
    log_path), with queue = { queue } and extra."""
    out = app_config(plugins=("echo", "testkit", plugin_entry(log_path)),
                     name=name, limits={"rate": 0},
                     extra="queue = { %s };\n%s" % (queue, extra))
    if workers is not None:
        out += "workers = %d;\n" % workers
    return out


class PipelinedClient:
    """One connection; requests may be pipelined: a reader task hands
    each reply (by requestId) to its caller, and every other frame to
    on_frame."""

    def __init__(self, c):
        self.c = c
        self.cid = None
        self.waiters = {}
        self.error = None
        self.task = asyncio.ensure_future(self._read())

    @classmethod
    async def open(cls, url):
        c = await connect(url)
        cid = await c.hello()
        pc = cls(c)
        pc.cid = cid
        return pc

    def on_frame(self, f):
        """A frame that is no awaited reply (pushed ones)."""

    async def _read(self):
        try:
            while True:
                f = await self.c.recv(timeout=3600)
                rid = f.get("requestId") if isinstance(f, dict) else None
                if rid is not None and rid in self.waiters:
                    self.waiters.pop(rid).set_result(f)
                else:
                    self.on_frame(f)
        except (Exception, asyncio.CancelledError) as e:  # noqa: BLE001
            self.error = e
            for fut in self.waiters.values():
                if not fut.done():
                    fut.set_exception(AssertionError(
                        "the connection ended while waiting for a reply "
                        "(%r): did the server crash?" % (e,)))
            self.waiters.clear()

    async def send(self, type_, action, data):
        """Send a request; returns a future of its reply frame."""
        check(self.error is None, "connection gone: %r" % (self.error,))
        rid = "q%d" % next(_rid)
        fut = asyncio.get_running_loop().create_future()
        self.waiters[rid] = fut
        await self.c.send_json({"type": type_, "action": action,
                                "data": data, "requestId": rid})
        return fut

    async def call(self, type_, action, data, timeout=20):
        fut = await self.send(type_, action, data)
        try:
            return await asyncio.wait_for(fut, timeout)
        except asyncio.TimeoutError:
            raise AssertionError("no reply to %s/%s %r within %s s"
                                 % (type_, action, data, timeout))

    async def close(self):
        self.task.cancel()
        await close_all([self.c])
