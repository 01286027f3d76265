"""
test_jobs_cli_live - pxl-jobs on the jobs a real pxl-serve made, with the
jobtest plugin (tests/plugins/jobtest.c), on both back ends: SQLite (no
redis group; queue.path) and Redis (a redis group; a real redis-server
started here on a free port of 18000-18999). test_jobs_cli.sh checks the
SQLite store against a hand-made table; this file checks that each store
reads what the workers write, and that both print the same.

The same cases run on each back end. Before pxl-serve ever ran: no jobs,
and pxl-jobs creates nothing. Then jobs in every state: c1, c2, c3 and
k1 completed (c1 well before the others), d1 (3 attempts) and "dead two"
(1 attempt) dead, a1 running (held, with progress), w1 and w2 (priority
7) waiting behind it (queue work runs one job at a time), "later"
delayed by an hour. The cases: queues with exact counts (text and
--json); show of a dead job, every field against the store's own
values, and of the running one (owner, lease, progress); dead (text and
--json) against the store; jobs that are not there, names that cannot
be queues or are SQL; retry of jobs that are not dead (a delayed one is
waiting, as on SQLite), of one dead job (the store then has it waiting
from now, attempt 0, error kept, and with Redis it left the dead stream
for its priority's stream) and of all; clean --older-than (only c1) and
clean; then the processor is fixed and the held job released: the
retried jobs run and complete. The normalised outputs (times, owners
and paths aside) of the two back ends are then compared.

With Redis only: a stale entry of the dead stream is neither listed nor
retried, and is dropped; Redis down is exit 1 naming it (and a usage
error still comes first, exit 2); an ACL user and password, a database
other than 0 and a unix socket: the jobs pxl-serve put there are found
(also when the app has an SQLite database: with a redis group the jobs
are in Redis), and a wrong password is exit 1 "AUTH refused".
"""
import asyncio
import json
import os
import random
import re
import socket
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from pxlredis import RedisServer  # noqa: E402
from pxltest import (TAP, Server, astop_servers, check, env,  # noqa: E402
                     eq, tmpdir)
from pxljobs import JobLog, PipelinedClient, queue_config  # noqa: E402
from pxljobs import table, wait_log  # noqa: E402

tap = TAP()
tap.deadline(240)

JOBS = os.path.join(env("PXL_BUILDDIR"), "framework", "pxl-jobs")
STALLED_MS = 30000  # queue.stalled_after's default, in ms
GAP_MS = 3000  # between c1's end and c2's

# pxl-jobs(1)'s fields of a job, in show's order, and how each prints.
COLUMNS = [("queue", "text"), ("id", "text"), ("state", "text"),
           ("priority", "int"), ("attempt", "int"), ("attempts", "int"),
           ("backoff_ms", "int"), ("backoff_exp", "int"),
           ("timeout_ms", "int"), ("keep", "int"), ("run_at", "time"),
           ("lease_until", "time"), ("owner", "text"),
           ("created_at", "time"), ("started_at", "time"),
           ("finished_at", "time"), ("payload", "json"),
           ("progress", "json"), ("result", "json"), ("error", "string")]


def free_port(lo=18000, hi=18999):
    """A TCP port of lo..hi that nothing listens on (as of now)."""
    for p in random.sample(range(lo, hi + 1), hi - lo + 1):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", p))
            except OSError:
                continue
            return p
    raise AssertionError("no free port in %d-%d" % (lo, hi))


def start_redis(**kw):
    """A redis-server of ours on a free port of 18000-18999 (another may
    take the port between the look and the bind: try a few)."""
    last = None
    for _ in range(5):
        r = RedisServer(port=free_port(), **kw)
        try:
            return r.start()
        except AssertionError as e:
            last = e
    raise last


def jobs(cfg, *args):
    """Run pxl-jobs: (exit status, stdout, stderr); a sanitizer report
    fails the case."""
    p = subprocess.run([JOBS, cfg] + list(args), stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=60)
    out = p.stdout.decode("utf-8", "replace")
    err = p.stderr.decode("utf-8", "replace")
    check(not re.search(r"Sanitizer|runtime error", err),
          "sanitizer report:\n" + err)
    return p.returncode, out, err


def expect(cfg, rc, args, out=None, err=None):
    """pxl-jobs args exits rc; stdout is out exactly (lines), stderr
    matches the regex err. Returns stdout."""
    got, o, e = jobs(cfg, *args)
    check(got == rc, "pxl-jobs %s: exit %d, want %d; stdout:\n%sstderr:\n%s"
          % (" ".join(args), got, rc, o, e))
    if out is not None:
        want = "".join(x + "\n" for x in out)
        eq(o, want, "stdout of pxl-jobs %s" % " ".join(args))
    if err is not None:
        check(re.search(err, e), "stderr of pxl-jobs %s: %r, want /%s/"
              % (" ".join(args), e, err))
    return o


def iso(ms):
    ms = int(ms)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + \
        ".%03dZ" % (ms % 1000)


def compact(v):
    return json.dumps(v, separators=(",", ":"), ensure_ascii=False)


def show_text(f):
    """show's text for fields f (name -> stored text or None)."""
    lines = []
    for name, kind in COLUMNS:
        v = f.get(name)
        if v is None:
            v = "-"
        elif kind == "time":
            v = "%s %s" % (iso(v), v)
        elif kind == "json":
            try:
                v = compact(json.loads(v))
            except ValueError:
                v = compact(v)
        elif kind == "string":
            v = compact(v)
        lines.append("%-12s %s" % (name, v))
    return lines


def show_json(f):
    """show --json's object for fields f."""
    o = {}
    for name, kind in COLUMNS:
        v = f.get(name)
        if kind == "int" and v is not None:
            v = int(v)
        elif kind == "json" and v is not None:
            v = json.loads(v)
        if kind == "time":
            o[name] = None if v is None else int(v)
            o[name + "_iso"] = None if v is None else iso(v)
        else:
            o[name] = v
    return o


def normalise(text):
    """Times, owners and temporary paths out of an output."""
    text = re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", "ISO", text)
    text = re.sub(r"\b1\d{12}\b", "MS", text)
    text = re.sub(r"pxltest-[A-Za-z0-9_]+", "TMP", text)
    return re.sub(r'("owner":|owner +)"?[0-9a-f]+/\d+/\d+"?', r"\1OWNER",
                  text)


class Back:
    """One back end: where its jobs are, read outside pxl-jobs."""

    def __init__(self, name, redis=None):
        self.name = name
        self.redis = redis
        self.dir = tmpdir()
        self.log = JobLog(os.path.join(self.dir, "jobtest.log"))
        extra = redis.config() if redis is not None else ""
        self.server = Server(queue_config("demo", self.log.path,
                                          extra=extra), name="demo")
        self.cfg = self.server.cfg
        self.db = os.path.join(os.path.dirname(self.cfg), "demo-jobs.db")
        self.outputs = {}  # case -> normalised stdout, for the comparison

    def fields(self, queue, id_):
        """A job's fields as pxl-jobs(1) names them (stored text or None),
        straight from the store; None when there is no such job."""
        if self.redis is None:
            rows = table(self.db, "WHERE queue = ? AND id = ?", (queue, id_))
            if not rows:
                return None
            return {k: (None if v is None else str(v))
                    for k, v in rows[0].items()}
        flat = self.redis.command("HGETALL", self.q(queue) + "j:" + id_)
        if not flat:
            return None
        h = dict(zip(flat[0::2], flat[1::2]))
        f = {name: h.get(name) for name, _ in COLUMNS}
        f.update(queue=queue, id=id_, lease_until=None)
        if f["state"] == "delayed":
            f["state"] = "waiting"
        f["_raw"] = h
        return f

    def q(self, queue):
        return "pxl:demo:q:%s:" % queue

    def count(self, queue, state):
        if self.redis is None:
            return len(table(self.db, "WHERE queue = ? AND state = ?",
                             (queue, state)))
        return sum(1 for k in self.redis.command("KEYS", self.q(queue) + "j:*")
                   if self.redis.command("HGET", k, "state") == state)

    def run(self, case, rc, args, out=None, err=None):
        o = expect(self.cfg, rc, args, out, err)
        self.outputs[case] = normalise(o)
        return o

    def case(self, name, fn, *args):
        return tap.case("%s: %s" % (self.name, name), fn, *args)

    async def acase(self, name, fn, *args, timeout=30):
        return await tap.acase("%s: %s" % (self.name, name), fn, *args,
                               timeout=timeout)


def t_empty(b):
    """Before pxl-serve ever ran: no jobs, and nothing is created."""
    b.run("empty queues", 0, ["queues"], ["QUEUE  WAITING  DELAYED   ACTIVE "
                                          "COMPLETED     DEAD"])
    b.run("empty queues json", 0, ["queues", "--json"], [])
    b.run("empty show", 3, ["show", "work", "1"], [],
          r'^pxl-jobs: no job "1" in queue "work"\n$')
    b.run("empty dead", 0, ["dead", "work"],
          ["ID ATTEMPTS DIED                     ERROR"])
    b.run("empty retry", 0, ["retry", "work", "--all"], ["0 retried"])
    b.run("empty retry id", 3, ["retry", "work", "d1"], [], "no job")
    b.run("empty clean", 0, ["clean", "work"], ["0 removed"])
    if b.redis is None:
        check(not os.path.exists(b.db), "%s was created" % b.db)
    else:
        eq(b.redis.command("DBSIZE"), 0, "keys in Redis")


async def make_jobs(b, c):
    """A job in every state (see the top of the file)."""
    async def add(queue, id_, payload, **opts):
        opts["id"] = id_
        r = await c.call("job", "add", {"queue": queue, "payload": payload,
                                        "options": opts})
        check("response" in r, "job/add %s: %r" % (id_, r))

    def ended(*ids):
        def pred(lines):
            done = {x["msg"]["id"] for x in lines
                    if x["ev"] == "jobCompleted" or
                    (x["ev"] == "jobFailed" and x["msg"].get("dead"))}
            return set(ids) <= done
        return pred

    await add("work", "c1", {"value": "first"}, keepCompleted=10)
    await wait_log(b.log, ended("c1"), 10, "c1 completed")
    c1_done = int(b.fields("work", "c1")["finished_at"])
    await add("work", "d1", {"failWhile": BROKEN, "to": "b@example.org"},
              attempts=3, backoffMs=100, priority=2, keepCompleted=10)
    await add("work", "dead two", {"failWhile": BROKEN}, attempts=1)
    await wait_log(b.log, ended("d1", "dead two"), 10, "d1, dead two dead")
    # c2 and c3 finish 3 s after c1 at least: clean --older-than finds
    # a whole number of seconds between them, with room for a slow start
    # of pxl-jobs (see t_clean).
    await asyncio.sleep(max(0, c1_done + GAP_MS - time.time() * 1000) / 1000)
    await add("work", "c2", {}, keepCompleted=10)
    await add("work", "c3", {}, keepCompleted=10, priority=5)
    await add("keep", "k1", {}, keepCompleted=10)
    await wait_log(b.log, ended("c2", "c3", "k1"), 10, "c2, c3, k1")
    await add("work", "a1", {"how": "hold", "hold": "h1",
                             "progress": [{"done": 0.5}]})
    await wait_log(b.log, lambda ls: any(
        x["ev"] == "progress" and x["id"] == "a1" for x in ls), 10,
        "a1 running")
    # work runs a1 alone: these wait. On Redis w2's level 7 is new, so
    # it adds a wake-up entry to level 0 that no worker reads while a1
    # is held: the counts must not take it for a waiting job.
    await add("work", "w2", {}, priority=7)
    await add("work", "w1", {"to": "a@example.org"})
    await add("work", "later", {}, delayMs=3600000)
    b.c1_done = c1_done
    b.c2_done = int(b.fields("work", "c2")["finished_at"])


def t_queues(b):
    b.run("queues", 0, ["queues"], [
        "QUEUE  WAITING  DELAYED   ACTIVE COMPLETED     DEAD",
        "keep         0        0        0         1        0",
        "work         2        1        1         3        2"])
    b.run("queues json", 0, ["queues", "--json"], [
        '{"queue":"keep","waiting":0,"delayed":0,"active":0,'
        '"completed":1,"dead":0}',
        '{"queue":"work","waiting":2,"delayed":1,"active":1,'
        '"completed":3,"dead":2}'])


def t_show_dead(b):
    """Every field of a dead job, as the store has it."""
    f = b.fields("work", "d1")
    eq((f["state"], f["attempt"], f["error"]),
       ("dead", "3", "failing attempt 3"), "d1 in the store")
    b.run("show d1", 0, ["show", "work", "d1"], show_text(f))
    o = b.run("show d1 json", 0, ["show", "work", "d1", "--json"])
    eq(json.loads(o), show_json(f), "show --json")
    eq(list(json.loads(o)), list(show_json(f)), "the keys' order")


def t_show_active(b):
    """The running job: its owner, its lease, its progress."""
    f = b.fields("work", "a1")
    o = json.loads(b.run("show a1", 0, ["show", "work", "a1", "--json"]))
    now = int(time.time() * 1000)
    want = show_json(f)
    eq(o["state"], "active", "state")
    check(o["owner"] and o["owner"] == f["owner"],
          "owner %r, the store's %r" % (o["owner"], f["owner"]))
    eq(o["progress"], {"done": 0.5}, "progress")
    # Taken over once its lease ends: stalled_after after the last
    # renewal, which is before now and not before the run began. With
    # Redis the lease counts from the entry's delivery, which a blocking
    # read makes a round trip before started_at is stamped: a second of
    # room.
    check(o["started_at"] + STALLED_MS - 1000 <= o["lease_until"] <= now +
          STALLED_MS, "lease_until %r: started_at %r, now %r"
          % (o["lease_until"], o["started_at"], now))
    eq(o["lease_until_iso"], iso(o["lease_until"]), "lease_until_iso")
    for k in ("lease_until", "lease_until_iso"):
        del o[k], want[k]
    eq(o, want, "the other fields")
    text = b.run("show a1 text", 0, ["show", "work", "a1"])
    check(re.search(r"^lease_until  \S+Z \d+$", text, re.M), text)


def t_not_found(b):
    b.run("show nope", 3, ["show", "work", "nope"], [],
          r'^pxl-jobs: no job "nope" in queue "work"\n$')
    b.run("show other queue", 3, ["show", "keep", "d1"], [],
          r'^pxl-jobs: no job "d1" in queue "keep"\n$')
    b.run("show dash", 3, ["show", "--", "work", "-1"], [],
          r'no job "-1" in queue "work"')


def t_dead(b):
    rows = sorted((b.fields("work", i) for i in ("d1", "dead two")),
                  key=lambda f: int(f["finished_at"]))
    eq([f["id"] for f in rows], ["dead two", "d1"], "the order of death")
    b.run("dead", 0, ["dead", "work"],
          ["ID       ATTEMPTS DIED                     ERROR"] +
          ["%-8s %8s %-24s %s" % (f["id"], "%s/%s" % (f["attempt"],
                                                      f["attempts"]),
                                  iso(f["finished_at"]), f["error"])
           for f in rows])
    b.run("dead json", 0, ["dead", "work", "--json"], [
        compact({"id": f["id"], "attempt": int(f["attempt"]),
                 "attempts": int(f["attempts"]), "error": f["error"],
                 "finished_at": int(f["finished_at"]),
                 "finished_at_iso": iso(f["finished_at"])}) for f in rows])
    b.run("dead none", 0, ["dead", "keep"],
          ["ID ATTEMPTS DIED                     ERROR"])


def t_odd_names(b):
    """Names that are SQL, or key syntax, or no queue's: no jobs."""
    for q in ("work' OR '1'='1", "work:j:d1", "work*", "Work", "x" * 65):
        b.run("dead odd", 0, ["dead", q, "--json"], [])
        b.run("show odd", 3, ["show", q, "d1"], [], "no job")
        b.run("retry odd", 0, ["retry", q, "--all"], ["0 retried"])
        b.run("clean odd", 0, ["clean", q], ["0 removed"])
    b.run("retry sql id", 3, ["retry", "work", "x' OR state='dead"], [],
          "no job")
    b.run("retry glob id", 3, ["retry", "work", "*"], [], "no job")
    eq(b.count("work", "dead"), 2, "dead jobs left")
    eq(b.count("work", "completed"), 3, "completed jobs left")


def t_retry_not_dead(b):
    for id_, state in (("w1", "waiting"), ("later", "waiting"),
                       ("a1", "active"), ("c2", "completed")):
        b.run("retry " + id_, 3, ["retry", "work", id_], [],
              r'^pxl-jobs: job "%s" in queue "work" is %s, not dead\n$'
              % (id_, state))
    b.run("retry nope", 3, ["retry", "work", "zz"], [],
          r'^pxl-jobs: no job "zz" in queue "work"\n$')
    eq(b.count("work", "dead"), 2, "dead jobs left")


def t_retry_one(b):
    before = int(time.time() * 1000)
    b.run("retry d1", 0, ["retry", "work", "d1"], ["1 retried"])
    after = int(time.time() * 1000)
    f = b.fields("work", "d1")
    eq((f["state"], f["attempt"], f["attempts"], f["error"],
        f["finished_at"], f["owner"]),
       ("waiting", "0", "3", "failing attempt 3", None, None),
       "state, attempt, attempts, error, finished_at, owner")
    check(before <= int(f["run_at"]) <= after,
          "run_at %s not in [%d, %d]" % (f["run_at"], before, after))
    if b.redis is not None:
        h = f["_raw"]
        check("dead_entry" not in h, "dead_entry stays: %r" % h)
        dead = b.redis.command("XRANGE", b.q("work") + "dead", "-", "+")
        eq([e[1][1] for e in dead], ["dead two"], "Q dead's jobs")
        s = b.redis.command("XRANGE", b.q("work") + "s:2", h["entry"],
                            h["entry"])
        eq(s, [[h["entry"], ["j", "d1"]]], "its entry in Q s:2")
    b.run("retry d1 again", 3, ["retry", "work", "d1"], [],
          "is waiting, not dead")


def t_retry_all(b):
    b.run("retry all", 0, ["retry", "work", "--all"], ["1 retried"])
    b.run("retry all none", 0, ["retry", "work", "--all"], ["0 retried"])
    eq(b.fields("work", "dead two")["state"], "waiting", "dead two")
    b.run("queues retried", 0, ["queues", "--json"], [
        '{"queue":"keep","waiting":0,"delayed":0,"active":0,'
        '"completed":1,"dead":0}',
        '{"queue":"work","waiting":4,"delayed":1,"active":1,'
        '"completed":3,"dead":0}'])
    if b.redis is not None:
        eq(b.redis.command("XLEN", b.q("work") + "dead"), 0, "Q dead")


def t_clean(b):
    # Whole seconds that put the cut 0.5 to 1.5 s after c1's end: before
    # c2's as long as pxl-jobs reads its clock within GAP_MS - 1.5 s.
    secs = (int(time.time() * 1000) - b.c1_done - 500) // 1000
    check(b.c2_done - b.c1_done >= GAP_MS, "c1 %d, c2 %d"
          % (b.c1_done, b.c2_done))
    b.run("clean older", 0, ["clean", "work", "--older-than", str(secs)],
          ["1 removed"])
    check(b.fields("work", "c1") is None, "c1 stays")
    eq(b.count("work", "completed"), 2, "completed jobs left")
    b.run("clean", 0, ["clean", "work"], ["2 removed"])
    eq(b.count("work", "completed"), 0, "completed jobs left")
    for id_, state in (("a1", "active"), ("w1", "waiting"),
                       ("w2", "waiting"), ("later", "waiting"),
                       ("d1", "waiting"), ("dead two", "waiting")):
        eq(b.fields("work", id_)["state"], state, id_)
    eq(b.fields("keep", "k1")["state"], "completed", "k1 of keep")
    if b.redis is not None:
        eq(b.redis.command("ZRANGE", b.q("work") + "done", 0, -1), [],
           "Q done")


async def t_fixed(b, c):
    """The processor fixed, the held job released: the retried jobs
    run again and complete."""
    os.unlink(BROKEN)
    r = await c.call("job", "release", {"hold": "h1"})
    eq(r.get("response"), 1, "held runs released")
    await wait_log(b.log, lambda ls: {"a1", "w1", "w2", "d1", "dead two"} <=
                   {x["msg"]["id"] for x in ls if x["ev"] == "jobCompleted"},
                   20, "the jobs of work completed")
    f = b.fields("work", "d1")
    eq((f["state"], f["attempt"], f["error"], json.loads(f["result"])),
       ("completed", "1", None, {"attempt": 1, "value": None}),
       "d1 after it ran")
    b.run("queues at the end", 0, ["queues"], [
        "QUEUE  WAITING  DELAYED   ACTIVE COMPLETED     DEAD",
        "keep         0        0        0         1        0",
        "work         0        1        0         5        0"])
    b.run("show d1 at the end", 0, ["show", "work", "d1"], show_text(f))


async def back_end(b):
    if not b.case("no jobs yet: every command says none, creates none",
                  t_empty, b):
        return
    with open(BROKEN, "w"):
        pass
    if not await b.acase("pxl-serve with jobtest starts",
                         asyncio.to_thread, b.server.start):
        return
    c = await PipelinedClient.open(b.server.url())
    try:
        if not await b.acase("jobs in every state", make_jobs, b, c):
            return
        b.case("queues: counts per state, text and --json", t_queues, b)
        b.case("show: a dead job's every field, as the store has it",
               t_show_dead, b)
        b.case("show: the running job's owner, lease and progress",
               t_show_active, b)
        b.case("show: no such job, another queue's, an id after -- (3)",
               t_not_found, b)
        b.case("dead: the oldest death first, text and --json", t_dead, b)
        b.case("names that are SQL, key syntax or no queue's: no jobs",
               t_odd_names, b)
        b.case("retry: a job that is not dead, or none (3)",
               t_retry_not_dead, b)
        b.case("retry ID: waiting from now, attempts anew, error kept",
               t_retry_one, b)
        b.case("retry --all: the other dead job, then none", t_retry_all, b)
        b.case("clean --older-than, then clean: only completed jobs go",
               t_clean, b)
        await b.acase("fixed and released: the retried jobs complete",
                      t_fixed, b, c)
    finally:
        await c.close()
        await astop_servers(tap, [b.server], name=b.name +
                            ": pxl-serve (%s) exits 0, clean log")


def t_same(backs):
    """What differs between the back ends is times, owners and paths."""
    s, r = backs
    eq(sorted(s.outputs), sorted(r.outputs), "the cases")
    for case in s.outputs:
        eq(r.outputs[case], s.outputs[case], "output of %r" % case)


def t_stale(b):
    """An entry of Q dead whose job is not dead with that entry."""
    key = b.q("work") + "dead"
    b.redis.command("XADD", key, "*", "j", "ghost", "error", "gone")
    b.redis.command("XADD", key, "*", "j", "w1", "error", "old")
    expect(b.cfg, 0, ["dead", "work", "--json"], [])
    expect(b.cfg, 0, ["retry", "work", "--all"], ["0 retried"])
    eq(b.redis.command("XLEN", key), 0, "entries left in Q dead")


def t_down():
    port = free_port()
    d = tmpdir()
    cfg = os.path.join(d, "down.cfg")
    with open(cfg, "w") as f:
        f.write('name = "demo";\nredis = { port = %d; connect_timeout = 1; '
                '};\n' % port)
    for cmd in (["queues"], ["show", "work", "x"], ["retry", "work", "--all"]):
        expect(cfg, 1, cmd, [], r"^pxl-jobs: redis at 127\.0\.0\.1:%d cannot "
               r"be used: .*refused" % port)
    expect(cfg, 2, ["list"], [], 'unknown command "list"')


async def t_acl(r):
    """user, password, database 3, unix socket: pxl-serve's jobs found.
    The app has an SQLite database too: with a redis group the jobs are
    in Redis all the same."""
    d = tmpdir()
    log = JobLog(os.path.join(d, "jobtest.log"))
    db = os.path.join(d, "app.db")
    srv = Server(queue_config("acl", log.path, extra=r.config(database=3) +
                              '\ndatabase = { path = "%s"; };' % db),
                 name="acl")
    await asyncio.to_thread(srv.start)
    try:
        c = await PipelinedClient.open(srv.url())
        try:
            await c.call("job", "add", {"queue": "keep", "payload": {},
                                        "options": {"id": "k",
                                                    "keepCompleted": 1}})
            await wait_log(log, lambda ls: any(
                x["ev"] == "jobCompleted" for x in ls), 10, "k completed")
        finally:
            await c.close()
        expect(srv.cfg, 0, ["queues", "--json"], [
            '{"queue":"keep","waiting":0,"delayed":0,"active":0,'
            '"completed":1,"dead":0}'])
        eq(r.command("DBSIZE"), 0, "keys in database 0")
        check(r.command("EXISTS", "pxl:acl:q:keep:j:k", db=3) == 1,
              "the job is in database 3")
        eq(table(db, name="sqlite_master WHERE name = 'pxl_jobs'"), [],
           "a jobs table in the app's database")
        with open(srv.cfg) as f:
            text = f.read()
        bad = os.path.join(d, "bad.cfg")
        with open(bad, "w") as f:
            f.write(text.replace('password = "%s"' % r.password,
                                 'password = "wrong"'))
        expect(bad, 1, ["queues"], [],
               r"^pxl-jobs: redis at .*redis\.sock cannot be used: AUTH "
               r"refused: WRONGPASS")
    finally:
        await astop_servers(tap, [srv], name="redis: pxl-serve (%s) on the "
                            "socket, with AUTH and SELECT, exits 0")


BROKEN = os.path.join(tmpdir(), "broken")  # while it exists, jobs fail


async def amain():
    t0 = time.monotonic()
    redis = start_redis()
    backs = [Back("sqlite"), Back("redis", redis)]
    for b in backs:
        await back_end(b)
    tap.case("both back ends print the same (times, owners, paths aside)",
             t_same, backs)
    tap.case("redis: a stale entry of the dead stream: not listed, not "
             "retried, dropped", t_stale, backs[1])
    tap.case("redis: Redis down is 1, naming it; usage still comes first",
             t_down)
    acl = start_redis(user="ops", password="s3cret", socket=True, tcp=False)
    await tap.acase("redis: ACL user, password, database 3, unix socket, "
                    "an SQLite database beside: found; a wrong password is 1",
                    t_acl, acl, timeout=60)
    acl.stop()
    redis.stop()
    tap.diag("%.1f s" % (time.monotonic() - t0))


tap.run(amain)
