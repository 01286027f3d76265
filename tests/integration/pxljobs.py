"""
pxljobs - what the queue tests share (stdlib + pxltest/pxlws): the
jobtest plugin's log (tests/plugins/jobtest.c writes one JSON object a
line, which survives kill -9), the jobs table read outside pxl
(framework/pxl_queue_sql.h), app files that load jobtest, and a client
whose requests may be pipelined (replies matched by requestId).
"""
import asyncio
import itertools
import json
import sqlite3

from pxltest import app_config, check
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
