"""
test_queue_redis - test_queue's cases with the jobs in Redis (a redis
group in the app files, a real redis-server of the test's own): the same
assertions as with SQLite, the stored jobs read from Redis
(pxljobs.RedisStore). Then what only Redis does, each case on its own
servers:

- two pxl-serve instances (separate processes, one app name, one Redis)
  share one queue of 10,000 jobs, all added through the first: both run
  a substantial share, no job runs twice (the runs in each instance's
  jobtest log, which carries its pid), every one completes once
  (attempt 1, stored completed), and each instance's subscribers hear
  all 10,000 jobCompleted events (the bus crosses instances);
- jobCompleted reaches a client connected to the other instance: 8 held
  jobs added through A, for a client on B (its id in the payload and,
  as pxl-plugin(3) says, in the result: jobtest's resultClient), run 4
  on each instance (concurrency 4 each); the client gets each job's
  jobCompleted once: for the jobs A ran, the event crossed to B through
  Redis and B's subscriber sent it (A's could not: a subscriber's sends
  reach its own worker's clients only);
- kill -9 of the instance running a job: the other instance runs it
  again once queue.stalled_after (2 s) has passed since its lease, and
  it completes once;
- the same when the stalled job's stream entry comes after more than ten
  entries of jobs still running (a claim asking for one job must still
  find it: XAUTOCLAIM looks at COUNT x 10 pending entries per call);
- while Redis is down (SHUTDOWN SAVE, on a redis-server of the case's
  own), job/add fails at once: pxl_job_add returns PXL_EAGAIN and the
  log says "queue unavailable", naming the job; nothing of it is stored
  or run later. The jobs Redis held (one running, one waiting behind
  it, one delayed and due during the outage) are not lost: with Redis
  back (the same data), the running one's outcome is recorded and the
  other two run, once each, and a new add works.
"""
import asyncio
import os
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import test_queue  # noqa: E402
from pxljobs import (JobLog, RedisStore, queue_config,  # noqa: E402
                     wait_log)
from pxlredis import RedisServer  # noqa: E402
from pxltest import (Server, astop_servers, check, eq,  # noqa: E402
                     load_slack, tmpdir)
from pxlws import poll  # noqa: E402
from test_queue import JobClient, max_running, now_ms, tap  # noqa: E402

N_SHARED = 10000
PXL_EAGAIN_TEXT = "try again"  # pxl_strerror(PXL_EAGAIN)


STALLED_AFTER = 2  # s, the pair's queue.stalled_after


class Pair:
    """Two pxl-serve instances of app "share" on the test's Redis, each
    with its own jobtest log."""

    def __init__(self, be):
        d = tmpdir()
        self.be = be
        self.logs = [JobLog(os.path.join(d, "%s.log" % n)) for n in "AB"]
        self.servers = [Server(queue_config(
            "share", log.path, queue="keep_completed = 20000; "
            "stalled_after = %d;" % STALLED_AFTER, extra=be.config()),
            name="share" + n) for n, log in zip("AB", self.logs)]
        self.store = be.store("share", stalled_after=STALLED_AFTER)
        self.killed = set()  # the servers a case killed (kill -9)

    def start(self):
        for s in self.servers:
            s.start()

    def need(self):
        check(all(s.running() for s in self.servers),
              "the two instances did not start (above)")

    def need_one(self):
        check(len(self.killed) == 1 and all(
            s.running() for s in self.servers if s not in self.killed),
            "no instance killed by the case above, and one running")


async def t_shared(pair):
    """10,000 jobs of queue many (concurrency 4 on each instance) added
    through A on 4 pipelined connections; both instances run them."""
    pair.need()
    a, b = pair.servers
    cs = [await JobClient.open(a.url()) for _ in range(4)]
    try:
        t0 = time.monotonic()
        specs = [[("many", {"value": i}, None)
                  for i in range(k, N_SHARED, 4)] for k in range(4)]
        replies = await asyncio.gather(*(c.add_many(s, timeout=120)
                                         for c, s in zip(cs, specs)))
    finally:
        for c in cs:
            await c.close()
    added = time.monotonic() - t0
    value_of = {}
    for s, rs in zip(specs, replies):
        for (q, p, o), r in zip(s, rs):
            check(not r["existed"], "a new job existed: %r" % r)
            value_of[r["id"]] = p["value"]
    eq(len(value_of), N_SHARED, "distinct ids")

    def done(lines):
        ids = {x["id"] for x in lines if x["ev"] == "end"
               and x["queue"] == "many"}
        return len(ids) >= N_SHARED
    await wait_log(pair.logs, done, 90, "%d jobs of queue many ended"
                   % N_SHARED)
    ran = time.monotonic() - t0
    await asyncio.sleep(0.5)  # anything that would run twice, would
    by = []
    seen = {}
    for srv, log in zip(pair.servers, pair.logs):
        starts = log.runs("many")
        eq({x["pid"] for x in log.lines()}, {srv.proc.pid},
           "pids in %s's log" % srv.name)
        by.append(len(starts))
        for x in starts:
            seen.setdefault(x["id"], []).append((srv.name, x["attempt"]))
        most = max_running(log.lines(), "many")
        check(most <= 4, "%s ran %d jobs of queue many (concurrency 4) at "
              "once" % (srv.name, most))
    twice = {i: v for i, v in seen.items() if len(v) > 1}
    eq(len(twice), 0, "jobs that ran more than once (first: %r)"
       % list(twice.items())[:5])
    eq(set(seen), set(value_of), "the ids that ran")
    check(all(v[0][1] == 1 for v in seen.values()), "a run with attempt "
          "!= 1: %r" % [v for v in seen.values() if v[0][1] != 1][:3])
    tap.diag("%d jobs on two instances: added in %.1f s, all ended after "
             "%.1f s; runs A %d, B %d" % (N_SHARED, added, ran, *by))
    for n, share in zip("AB", by):
        check(share >= N_SHARED // 5, "instance %s ran %d of %d jobs: not "
              "a substantial share (1/5 at least)" % (n, share, N_SHARED))
    rows = await asyncio.to_thread(pair.store.jobs, "many")
    eq(len(rows), N_SHARED, "stored jobs of queue many")
    bad = [(r["id"], r["state"], r["attempt"]) for r in rows
           if (r["state"], r["attempt"]) != ("completed", 1)]
    eq(bad[:5], [], "stored jobs not completed after one attempt (%d)"
       % len(bad))
    # Every instance's subscribers hear every job's jobCompleted, once.
    for srv, log in zip(pair.servers, pair.logs):
        heard = [x["msg"]["id"] for x in log.lines()
                 if x["ev"] == "jobCompleted"
                 and x["msg"].get("queue") == "many"]
        eq(len(set(heard)), N_SHARED, "jobCompleted events %s heard"
           % srv.name)
        eq(len(heard), N_SHARED, "jobCompleted events %s heard (some twice)"
           % srv.name)


async def t_cross(pair):
    """8 held jobs of queue many added through A for a client on B: 4
    run on each instance; released on both, the client on B gets the 8
    jobCompleted, once each, all sent by B's subscriber, 4 of them for
    events A published."""
    pair.need()
    a, b = pair.servers
    la, lb = pair.logs
    ca = await JobClient.open(a.url())
    cb = await JobClient.open(b.url())
    try:
        rs = await ca.add_many([("many", {"how": "hold", "hold": "x",
                                          "client": cb.cid,
                                          "resultClient": True,
                                          "value": "x%d" % i},
                                 {"id": "x%d" % i}) for i in range(8)])
        ids = {r["id"] for r in rs}
        await wait_log(pair.logs, lambda ls: len({
            x["id"] for x in ls if x["ev"] == "start"
            and x["id"] in ids}) == 8, 10, "the 8 held jobs' starts")
        on_a = {x["id"] for x in la.runs("many") if x["id"] in ids}
        on_b = {x["id"] for x in lb.runs("many") if x["id"] in ids}
        eq((len(on_a), len(on_b)), (4, 4), "held jobs running on A, B")
        eq([f["data"]["id"] for f in cb.events], [], "events before the "
           "release")
        eq((await ca.call("job", "release", {"hold": "x"})).get("response"),
           4, "held runs A released")
        eq((await cb.call("job", "release", {"hold": "x"})).get("response"),
           4, "held runs B released")
        await cb.wait_events(lambda: len({
            e["data"]["id"] for e in cb.events
            if e["action"] == "jobCompleted"}) == 8, 10,
            "the client on B got the 8 jobCompleted")
        await asyncio.sleep(0.3)  # a second copy would come now
        got = [e["data"]["id"] for e in cb.events
               if e["action"] == "jobCompleted"]
        eq(sorted(got), sorted(ids), "jobCompleted the client on B got")
        for e in cb.events:
            test_queue.check_event_keys(e, ("queue", "id", "attempt",
                                            "result"))
            eq(e["data"]["result"], {"attempt": 1, "value": e["data"]["id"],
                                     "client": cb.cid},
               "result of %s" % e["data"]["id"])
        eq(ca.events, [], "events the client on A got (none was its)")
        for i in ids:
            eq([x["sent"] for x in lb.events("jobCompleted", "many", i)],
               [1], "%s (ran on %s): B's subscriber's sends of its "
               "jobCompleted" % (i, "A" if i in on_a else "B"))
            eq([x["sent"] for x in la.events("jobCompleted", "many", i)],
               [0], "%s: A's subscriber's sends (the client is on B)" % i)
    finally:
        await ca.close()
        await cb.close()


def kill9(srv):
    """kill -9 and reap; the time of the kill (ms)."""
    srv.proc.kill()
    at = now_ms()
    srv.proc.wait(10)
    return at


async def t_takeover(pair):
    """Queue work: t1 held on its first attempt, added through A, runs
    on one instance; that instance is killed (kill -9); the other runs
    it again (attempt 2) once its lease (last delivery + stalled_after)
    has run out, not before, and it completes once."""
    pair.need()
    c = await JobClient.open(pair.servers[0].url())
    try:
        await c.add("work", {"how": "hold", "hold": "t", "holdUntil": 1,
                             "value": "t1"}, {"id": "t1"})
        await wait_log(pair.logs, lambda ls: any(
            x["ev"] == "start" and x["id"] == "t1" for x in ls), 10,
            "t1's start")
    finally:
        await c.close()
    k = 0 if pair.logs[0].runs("work", "t1") else 1
    dead, live = pair.servers[k], pair.servers[1 - k]
    dlog, llog = pair.logs[k], pair.logs[1 - k]
    await asyncio.sleep(0.5)  # a renewal or two
    killed = kill9(dead)
    pair.killed.add(dead)
    row = await asyncio.to_thread(pair.store.job, "work", "t1")
    eq((row["state"], row["attempt"], row["owner"].split("/")[-1]),
       ("active", 1, str(dead.proc.pid)), "t1 after the kill (owner's pid)")
    lease = row["lease_until"]
    check(lease >= row["started_at"] + STALLED_AFTER * 1000, "t1's lease "
          "(%d) ends less than stalled_after after its start (%d)"
          % (lease, row["started_at"]))
    again = await wait_log(llog, lambda ls: (lambda s: s[0] if s else None)(
        [x for x in ls if x["ev"] == "start" and x["id"] == "t1"]),
        STALLED_AFTER + 5 + load_slack(5, 5), "t1 running again on %s"
        % live.name)
    await wait_log(llog, lambda ls: any(
        x["ev"] == "jobCompleted" and x["msg"]["id"] == "t1" for x in ls),
        10, "t1 completed")
    await asyncio.sleep(0.3)
    eq(again["attempt"], 2, "the attempt of t1's second run")
    check(again["at"] >= lease, "t1 ran again %d ms before its lease ran "
          "out" % (lease - again["at"]))
    bound = STALLED_AFTER * 1000 + 1000 + load_slack(5, 2) * 1000
    check(again["at"] - killed <= bound, "t1 ran again %d ms after the "
          "kill (stalled_after %d s, bound %d ms)"
          % (again["at"] - killed, STALLED_AFTER, bound))
    eq([x["attempt"] for x in dlog.runs("work", "t1")], [1],
       "t1's runs on the killed instance")
    eq([x["attempt"] for x in llog.runs("work", "t1")], [2],
       "t1's runs on the other one")
    eq([x["msg"]["result"] for x in llog.events("jobCompleted", "work",
                                                 "t1")],
       [{"attempt": 2, "value": "t1"}], "t1's jobCompleted")
    row = await asyncio.to_thread(pair.store.job, "work", "t1")
    eq((row["state"], row["attempt"]), ("completed", 2), "t1 stored")
    tap.diag("kill -9 of %s: t1 ran again on %s %d ms after the kill"
             % (dead.name, live.name, again["at"] - killed))


async def t_takeover_behind(pair):
    """Queue delay (concurrency 16): the surviving instance S holds 16
    jobs (o0..o15, added while it is alone); the killed one, started
    again (K), takes s1 (S is full) and is killed again. o0 is
    released: S runs 15, and its claims ask for one job. s1's entry
    comes after 15 pending entries of running jobs; S must still run
    it again once stalled_after has passed, while o1..o15 still run."""
    pair.need_one()
    k = next(iter(pair.killed))
    kn = pair.servers.index(k)
    srv, log = pair.servers[1 - kn], pair.logs[1 - kn]
    klog = pair.logs[kn]
    c = await JobClient.open(srv.url())
    try:
        await c.add_many([("delay", {"how": "hold", "hold": "o%d" % min(i, 1),
                                     "value": "o%d" % i}, {"id": "o%d" % i})
                          for i in range(16)])
        await wait_log(log, lambda ls: len([
            x for x in ls if x["ev"] == "start" and x["queue"] == "delay"])
            == 16, 10, "16 held jobs running on %s" % srv.name)
        await asyncio.to_thread(k.start)
        ck = await JobClient.open(k.url())
        try:
            await ck.add("delay", {"how": "hold", "hold": "s",
                                   "holdUntil": 1, "value": "s1"},
                         {"id": "s1"})
        finally:
            await ck.close()
        await wait_log(klog, lambda ls: any(
            x["ev"] == "start" and x["id"] == "s1" for x in ls), 10,
            "s1's start on %s" % k.name)
        await asyncio.sleep(0.3)
        killed = kill9(k)
        eq((await c.call("job", "release", {"hold": "o0"})).get("response"),
           1, "o0 released")
        row = await asyncio.to_thread(pair.store.job, "delay", "s1")
        eq((row["state"], row["attempt"]), ("active", 1), "s1 after the "
           "kill")
        try:
            again = await wait_log(log, lambda ls: (
                lambda s: s[0] if s else None)(
                    [x for x in ls if x["ev"] == "start"
                     and x["id"] == "s1"]),
                STALLED_AFTER + 4 + load_slack(5, 5), "s1 running again "
                "on %s while it runs 15 other jobs of the queue" % srv.name)
        except AssertionError as e:
            q = "pxl:share:q:delay:"
            raise AssertionError("%s\nRedis: XPENDING %ss:0 pxl: %r; "
                                 "HGETALL %sj:s1: %r" % (
                                     e, q, pair.be.redis.command(
                                         "XPENDING", q + "s:0", "pxl"),
                                     q, pair.be.redis.command(
                                         "HGETALL", q + "j:s1")))
        eq(again["attempt"], 2, "s1's second run")
        check(again["at"] >= row["lease_until"], "s1 ran again before its "
              "lease ran out")
        tap.diag("s1 ran again %d ms after the kill, behind 15 running jobs"
                 % (again["at"] - killed))
        await wait_log(log, lambda ls: any(
            x["ev"] == "jobCompleted" and x["msg"]["id"] == "s1"
            for x in ls), 10, "s1 completed")
    finally:
        eq((await c.call("job", "release", {"hold": "o1"})).get("response"),
           15, "o1..o15 released")
        await c.close()
    await wait_log(log, lambda ls: len({
        x["msg"]["id"] for x in ls if x["ev"] == "jobCompleted"
        and x["msg"]["queue"] == "delay"}) == 17, 10, "17 jobs completed")
    eq(len(log.events("jobCompleted", "delay", "s1")), 1, "s1 completions")


class Down:
    """A server of app "down" on a redis-server of its own."""

    def __init__(self):
        self.redis = RedisServer(name="redis-down")
        self.log = JobLog(os.path.join(tmpdir(), "down.log"))
        self.server = None
        self.store = RedisStore(self.redis, "down")

    def start(self):
        self.redis.start()
        self.server = Server(queue_config("down", self.log.path,
                                          extra=self.redis.config()),
                             name="down").start()


async def t_redis_down(dn):
    """Queue work (concurrency 1): h1 held (running), w1 waiting behind
    it, d1 due 1 s later. Redis stops with SHUTDOWN SAVE; job/add fails
    at once (5 tries), saying why; d1's time passes. Redis starts again
    with its data: h1's release is recorded, w1 and d1 run once each,
    nothing of the refused adds exists, and a new job runs."""
    check(dn.server is not None, "the server did not start (above)")
    srv, redis, log, store = dn.server, dn.redis, dn.log, dn.store
    c = await JobClient.open(srv.url())
    try:
        await c.add("work", {"how": "hold", "hold": "h", "value": "h1"},
                    {"id": "h1"})
        await wait_log(log, lambda ls: any(
            x["ev"] == "start" and x["id"] == "h1" for x in ls), 10,
            "h1's start")
        await c.add("work", {"value": "w1"}, {"id": "w1"})
        d1 = await c.add("work", {"value": "d1"}, {"id": "d1",
                                                    "delayMs": 1000})
        before = {r["id"]: (r["state"], r["store_state"])
                  for r in await asyncio.to_thread(store.jobs, "work")}
        eq(before, {"h1": ("active", "active"),
                    "w1": ("waiting", "waiting"),
                    "d1": ("waiting", "delayed")}, "stored before the stop")
        lines = len(srv.log().splitlines())
        await asyncio.to_thread(redis.stop, save=True)
        down_at = now_ms()

        async def noticed():
            return any("connection lost" in x
                       for x in srv.log().splitlines()[lines:])
        await poll(noticed, timeout=5, what="pxl-serve noticing Redis gone")
        for i in range(5):
            t0 = time.monotonic()
            f = await c.call("job", "add", {"queue": "work",
                                            "payload": {"value": "x%d" % i},
                                            "options": {"id": "x%d" % i}})
            took = time.monotonic() - t0
            eq(f.get("type"), "error", "job/add while Redis is down: %r" % f)
            eq(f["data"]["error"], "pxl_job_add: " + PXL_EAGAIN_TEXT,
               "the refusal")
            check(took <= 0.2 + load_slack(1, 0.3), "job/add took %.3f s to "
                  "fail while Redis is down" % took)
        new = srv.log().splitlines()[lines:]
        for i in range(5):
            check(any("queue unavailable" in x and "x%d" % i in x
                      for x in new), "no log line says 'queue unavailable' "
                  "for job x%d; new lines:\n%s" % (i, "\n".join(new[-20:])))
        wait = d1["addedAt"] + 1000 + 300 - now_ms()
        if wait > 0:
            await asyncio.sleep(wait / 1000)  # d1 is due: Redis is down
        eq([x["id"] for x in log.runs("work")], ["h1"], "runs while Redis "
           "is down")
        lines = len(srv.log().splitlines())
        await asyncio.to_thread(redis.start)
        up_at = now_ms()

        async def back():
            return any("connected" in x
                       for x in srv.log().splitlines()[lines:])
        await poll(back, timeout=10, what="pxl-serve reconnecting")
        eq((await c.call("job", "release", {"hold": "h"})).get("response"),
           1, "h1 released")
        await wait_log(log, lambda ls: {
            x["msg"]["id"] for x in ls if x["ev"] == "jobCompleted"} >=
            {"h1", "w1", "d1"}, 10, "h1, w1 and d1 completed")
        a = await c.add("work", {"value": "a1"}, {"id": "a1"})
        check(not a["existed"], "a1 existed")
        await wait_log(log, lambda ls: any(
            x["ev"] == "jobCompleted" and x["msg"]["id"] == "a1"
            for x in ls), 10, "a1 completed")
        await asyncio.sleep(0.3)
        eq(sorted(x["id"] for x in log.runs("work")),
           ["a1", "d1", "h1", "w1"], "runs of queue work (each once)")
        rows = {r["id"]: (r["state"], r["attempt"])
                for r in await asyncio.to_thread(store.jobs, "work")}
        eq(rows, {i: ("completed", 1) for i in ("h1", "w1", "d1", "a1")},
           "stored jobs (none of the refused adds)")
        for i in ("w1", "d1"):
            x = log.runs("work", i)[0]
            check(x["at"] >= up_at - 50, "%s ran before Redis was back" % i)
        tap.diag("Redis down %d ms; w1 and d1 ran %s ms after it was back"
                 % (up_at - down_at, [log.runs("work", i)[0]["at"] - up_at
                                      for i in ("w1", "d1")]))
    finally:
        await c.close()


async def down_cases(be, say):
    dn = Down()
    tap.case(say("a redis-server of its own and a server on it start"),
             dn.start)
    await tap.acase(say("while Redis is down job/add fails at once (queue "
                        "unavailable); the jobs Redis held run when it is "
                        "back"), t_redis_down, dn, timeout=40)
    if dn.server is not None:
        await astop_servers(tap, [dn.server], name=say("%s: server exits 0, "
                                                       "clean log"))
    tap.case(say("its redis-server stops"), dn.redis.stop)


async def pair_cases(be, say):
    pair = Pair(be)
    if not tap.case(say("two instances of one app on one Redis start"),
                    pair.start):
        return
    await tap.acase(say("two instances share one queue of %d jobs: both "
                        "take part, none runs twice, all complete"
                        % N_SHARED), t_shared, pair, timeout=150)
    await tap.acase(say("jobCompleted reaches a client connected to the "
                        "other instance"), t_cross, pair, timeout=30)
    await tap.acase(say("kill -9 of the instance running a job: the other "
                        "runs it again after stalled_after, once"),
                    t_takeover, pair, timeout=30)
    await tap.acase(say("kill -9 of the instance running a job whose entry "
                        "comes after 15 running ones: the other still runs "
                        "it again after stalled_after"), t_takeover_behind,
                    pair, timeout=40)
    await astop_servers(tap, [s for s in pair.servers
                              if s not in pair.killed],
                        name=say("%s: server exits 0, clean log"))


if __name__ == "__main__":
    test_queue.run("redis", more=(pair_cases, down_cases), deadline=300)
