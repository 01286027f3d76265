#!/usr/bin/python3
"""
test_endpoints - GET /health and GET /metrics for operators (issue 14).

On the WebSocket port: /health is 200 with its JSON body while serving,
503 "draining" while the shutdown drain waits for a client that does not
answer its 1001, and 503 "degraded" while a required Redis is down (a
real redis-server, stopped and started again). /metrics is checked by a
strict parser of the text exposition format 0.0.4 with values from the
test's own traffic, with the database pool's and the queues' figures, in one process and in a cluster of two workers
(one scrape covers both, whichever worker answers). An upgrade to
/health still gets 404; bad requests get a clear status and the server
carries on. The allow lists refuse a client bound to 127.0.0.2 with
403. With an admin group the endpoints move to that listener and the
WebSocket port answers them 404. A required PostgreSQL that stops
makes health 503 too. Bad allow entries and clashing paths
are config errors.
"""
import asyncio
import json
import math
import os
import re
import socket
import sys

sys.dont_write_bytecode = True

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from pxljobs import queue_config  # noqa: E402
from pxlpg import PG  # noqa: E402
from pxlredis import RedisServer  # noqa: E402
from pxltest import (TAP, RawWS, Server, app_config,  # noqa: E402
                     astop_servers, check, eq, new_key, run_serve,
                     tmpdir, unused_port, upgrade_request, wait_until)
from pxlws import close_all, connect  # noqa: E402

tap = TAP()
tap.deadline(240)

# ---- a plain HTTP client ---------------------------------------------------


def http(port, path="/health", method="GET", raw=None, source=None):
    """One request (or raw bytes): (status, headers {name: value}, body,
    raw head). The server must close the connection after the answer."""
    with RawWS(port, source=source) as c:
        if raw is None:
            raw = ("%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                   "User-Agent: test_endpoints\r\n\r\n"
                   % (method, path)).encode()
        c.send(raw)
        if method == "HEAD":
            # No body follows the head, whatever Content-Length says.
            r = None
            while r is None:
                try:
                    c._fill()
                except EOFError:
                    r = c.buf
            check(r.endswith(b"\r\n\r\n") and r.count(b"\r\n\r\n") == 1,
                  "a HEAD answer is a head alone: %r" % r)
            c.buf += b"\0" * int(re.search(rb"Content-Length: (\d+)",
                                           r).group(1))
        r = c.read_response()
        try:
            c._fill()
            raise AssertionError("more after the answer: %r" % c.buf)
        except (EOFError, ConnectionResetError):
            pass
    headers = {}
    for name, values in r.headers.items():
        eq(len(values), 1, "header %s once" % name)
        headers[name] = values[0]
    check("content-length" in headers, "Content-Length in %r" % r.raw)
    eq(headers.get("connection"), "close", "Connection header")
    return r.status, headers, b"" if method == "HEAD" else r.body, r.raw


def health(port, **kw):
    status, headers, body, _ = http(port, "/health", **kw)
    eq(headers["content-type"], "application/json", "health Content-Type")
    doc = json.loads(body)
    check(isinstance(doc, dict), "health body %r" % body)
    return status, doc


def check_health_doc(doc, status, deps=()):
    eq(doc.get("status"), status, "status in %r" % doc)
    check(isinstance(doc.get("uptime"), int) and doc["uptime"] >= 0,
          "uptime in %r" % doc)
    check(isinstance(doc.get("connections"), int), "connections in %r" % doc)
    eq(sorted(doc), sorted(["status", "uptime", "connections"] + list(deps)),
       "health keys")


# ---- a strict parser of the text exposition format 0.0.4 -------------------

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
SAMPLE_RE = re.compile(r"^(%s)(?:\{((?:%s)(?:,%s)*)?\})? (\S+)$"
                       % (NAME, LABEL, LABEL))
LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"')
TYPES = ("counter", "gauge", "histogram", "summary", "untyped")


def parse_prom(text):
    """{family: {"type", "help", "samples": {labels tuple: value}}};
    raises on anything the format does not allow."""
    check(text.endswith("\n"), "the exposition ends with a newline")
    fams = {}
    current = None
    for no, line in enumerate(text[:-1].split("\n"), 1):
        where = "line %d %r" % (no, line)
        if line.startswith("# HELP "):
            name, sep, help_ = line[7:].partition(" ")
            check(re.fullmatch(NAME, name), "HELP name, " + where)
            check(name not in fams, "family declared twice, " + where)
            check(re.fullmatch(r"(?:[^\\]|\\[\\n])*", help_),
                  "HELP escapes, " + where)
            fams[name] = {"help": help_, "type": None, "samples": {}}
            current = name
        elif line.startswith("# TYPE "):
            name, _, typ = line[7:].partition(" ")
            check(re.fullmatch(NAME, name), "TYPE name, " + where)
            check(typ in TYPES, "TYPE type, " + where)
            fam = fams.setdefault(name, {"help": None, "type": None,
                                         "samples": {}})
            check(fam["type"] is None and not fam["samples"],
                  "TYPE twice or after samples, " + where)
            check(current in (None, name) or fam["help"] is None,
                  "TYPE of another family's HELP, " + where)
            fam["type"] = typ
            current = name
            if typ == "counter":
                check(name.endswith("_total"), "counter not _total, " + where)
        elif line.startswith("#"):
            pass  # a comment
        else:
            m = SAMPLE_RE.match(line)
            check(m is not None, "not a sample, " + where)
            name, labels, value = m.group(1), m.group(2), m.group(3)
            check(name == current and name in fams and
                  fams[name]["type"] is not None,
                  "sample outside its family's TYPE block, " + where)
            pairs = tuple(sorted(LABEL_RE.findall(labels or "")))
            check(len({k for k, _ in pairs}) == len(pairs),
                  "label twice, " + where)
            check(pairs not in fams[name]["samples"],
                  "sample twice, " + where)
            v = float(value)  # NaN, +Inf, -Inf parse too
            if fams[name]["type"] == "counter":
                check(math.isnan(v) or v >= 0, "negative counter, " + where)
            fams[name]["samples"][pairs] = v
    for name, fam in fams.items():
        check(fam["type"] is not None, "family %s has no TYPE" % name)
    return fams


def metrics(port, **kw):
    status, headers, body, _ = http(port, "/metrics", **kw)
    eq(status, 200, "metrics status")
    eq(headers["content-type"], "text/plain; version=0.0.4; charset=utf-8",
       "metrics Content-Type")
    return parse_prom(body.decode("utf-8"))


def value(fams, name, **labels):
    want = tuple(sorted(labels.items()))
    check(name in fams, "family %s exposed" % name)
    check(want in fams[name]["samples"], "%s%r in %r"
          % (name, want, fams[name]["samples"]))
    return fams[name]["samples"][want]


# ---- one process -----------------------------------------------------------

server = Server(app_config(shutdown_timeout=5), name="single")


def start_single():
    server.start()


async def clients_and_messages():
    clients = []
    try:
        for _ in range(3):
            c = await connect(server.url())
            await c.hello()
            clients.append(c)
        for i in range(10):
            await clients[i % 3].request("test", "echo", i)
        status, doc = health(server.port)
        eq(status, 200, "health status")
        check_health_doc(doc, "ok")
        eq(doc["connections"], 3, "connections")
        fams = metrics(server.port)
        check(value(fams, "pxl_messages_received_total") >= 10,
              "messages received")
        check(value(fams, "pxl_messages_sent_total") >= 13,
              "messages sent (3 greetings and 10 replies)")
        eq(value(fams, "pxl_connections"), 3, "pxl_connections")
        check(value(fams, "pxl_connections_opened_total") >= 3, "opened")
        eq(fams["pxl_connections"]["type"], "gauge", "connections type")
        for name in ("process_resident_memory_bytes", "process_open_fds",
                     "process_start_time_seconds"):
            check(value(fams, name) > 0, name)
            eq(fams[name]["type"], "gauge", name + " type")
        check(value(fams, "process_cpu_seconds_total") > 0, "cpu")
        eq(fams["process_cpu_seconds_total"]["type"], "counter", "cpu type")
        check(value(fams, "process_open_fds") >= 4, "open fds")
        check("pxl_redis_up" not in fams, "no redis, no pxl_redis_up")
    finally:
        await close_all(clients)


def head_and_methods():
    status, headers, body, _ = http(server.port, "/metrics", method="HEAD")
    eq((status, body), (200, b""), "HEAD /metrics: 200, no body")
    check(int(headers["content-length"]) > 100, "HEAD Content-Length")
    for method in ("POST", "PUT", "DELETE"):
        status, headers, body, _ = http(server.port, "/metrics",
                                        method=method)
        eq(status, 405, method + " /metrics")
        eq(headers.get("allow"), "GET, HEAD", "Allow header")
    status, _, _, _ = http(server.port, "/health", method="POST")
    eq(status, 405, "POST /health")


def other_requests_unchanged():
    eq(http(server.port, "/nope")[0], 404, "GET /nope")
    eq(http(server.port, "/ws")[0], 400, "a plain GET /ws (PROTOCOL.md)")
    # An upgrade to the health path is an upgrade: 404 as before.
    status, _, body, _ = http(server.port,
                              raw=upgrade_request(path="/health", key=new_key()))
    eq(status, 404, "an upgrade to /health")
    status, _, _, _ = http(server.port, raw=upgrade_request(
        path="/metrics", key=new_key(), version="8"))
    eq(status, 404, "an upgrade to /metrics with another version")
    status, _, _, _ = http(server.port, raw=upgrade_request(key=new_key(), version="8"))
    eq(status, 426, "the WebSocket path's version check")


def bad_input():
    for raw, what in (
            (b"GET /health HTTP/1.1 extra\r\nHost: x\r\n\r\n",
             "a malformed request line"),
            (b"GET /metrics\r\n\r\n", "HTTP/0.9"),
            (b"GET /health HTTP/1.1\nHost: x\n\n", "bare LF"),
            (b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 9000 +
             b"\r\n\r\n", "a request too large")):
        status, _, body, _ = http(server.port, raw=raw)
        eq(status, 400, what)
        check(len(body) > 0, "a short text body for " + what)
    status, doc = health(server.port)
    eq(status, 200, "health after bad input")


tap.case("a single server starts", start_single)
tap.case("/health and /metrics reflect 3 clients and 10 messages",
         lambda: asyncio.run(clients_and_messages()))
tap.case("HEAD is answered without a body; other methods get 405",
         head_and_methods)
tap.case("other paths and upgrades get what PROTOCOL.md says",
         other_requests_unchanged)
tap.case("bad requests get 400 and the server keeps serving", bad_input)


# ---- the drain ------------------------------------------------------------


def drain():
    """A client that never answers the 1001 keeps the drain going for
    shutdown_timeout: health says 503 draining meanwhile."""
    c = RawWS(server.port)
    try:
        c.handshake()
        eq(health(server.port)[0], 200, "health before SIGTERM")
        server.terminate()
        wait_until(lambda: health(server.port)[0] == 503, 5,
                   "health to turn 503")
        status, doc = health(server.port)
        check_health_doc(doc, "draining")
        eq(doc["connections"], 1, "the draining client")
        # An upgrade while draining is refused, not served.
        eq(http(server.port, raw=upgrade_request(key=new_key()))[0], 503,
           "an upgrade while draining")
        eq(metrics(server.port)["pxl_connections"]["samples"][()], 1,
           "metrics while draining")
    finally:
        c.close()
    eq(server.wait(15), 0, "exit code after the drain")


tap.case("while draining, /health is 503 \"draining\"", drain)
tap.case("single server exits 0, clean log", server.stop)

# ---- allow lists -----------------------------------------------------------

allow = Server(app_config(extra='health = { allow = [ "127.0.0.1" ]; };\n'
                          'metrics = { allow = [ "127.0.0.1/32", '
                          '"::1" ]; };'), name="allow")
defaults = Server(app_config(), name="defaults")


def allow_lists():
    allow.start()
    defaults.start()
    for path in ("/health", "/metrics"):
        status, _, body, _ = http(allow.port, path, source="127.0.0.2")
        eq(status, 403, path + " from 127.0.0.2")
        eq(body, b"Forbidden\n", "403 body")
        eq(http(allow.port, path, source="127.0.0.1")[0], 200,
           path + " from 127.0.0.1")
    # Defaults: health open, metrics loopback (127.0.0.0/8).
    eq(http(defaults.port, "/health", source="127.0.0.2")[0], 200,
       "default health from 127.0.0.2")
    eq(http(defaults.port, "/metrics", source="127.0.0.2")[0], 200,
       "default metrics from 127.0.0.2 (loopback)")
    allow.stop()
    defaults.stop()


tap.case("allow lists: 403 outside, 200 inside; defaults", allow_lists)

# ---- a database ----------------------------------------------------------

database = Server(app_config(extra="database = { };"), name="database")


def database_figures():
    database.start()
    wait_until(lambda: health(database.port)[1].get("database") == "up", 10,
               "database up in health")
    status, doc = health(database.port)
    eq(status, 200, "health with a database")
    check_health_doc(doc, "ok", ["database"])
    fams = metrics(database.port)
    eq(value(fams, "pxl_database_up"), 1, "pxl_database_up")
    eq(fams["pxl_database_queries_total"]["type"], "counter", "queries type")
    eq(fams["pxl_database_pending"]["type"], "gauge", "pending type")
    check(value(fams, "pxl_database_pending") >= 0, "pending")
    database.stop()


tap.case("a database: its state in /health, its pool in /metrics",
         database_figures)

def outage(srv, dep, stop, start):
    """dep ("redis", "database") is up, then stop() takes it down: health
    503 "degraded" and pxl_DEP_up 0; start() brings it back: 200."""
    srv.start()
    wait_until(lambda: health(srv.port)[1].get(dep) == "up", 10,
               dep + " up in health")
    status, doc = health(srv.port)
    eq(status, 200, "health with %s up" % dep)
    check_health_doc(doc, "ok", [dep])
    eq(value(metrics(srv.port), "pxl_%s_up" % dep), 1, "pxl_%s_up" % dep)
    stop()
    wait_until(lambda: health(srv.port)[0] == 503, 15,
               "health 503 with %s stopped" % dep)
    status, doc = health(srv.port)
    check_health_doc(doc, "degraded", [dep])
    eq(doc[dep], "down", dep + " in health")
    eq(value(metrics(srv.port), "pxl_%s_up" % dep), 0, "pxl_%s_up" % dep)
    start()
    wait_until(lambda: health(srv.port)[0] == 200, 15,
               "health 200 once %s is back" % dep)


pg = PG()


def pg_required():
    pg.start()
    group = pg.database_group().replace(
        "connect_timeout = 5; };",
        "connect_timeout = 5; required = true; retry_max_delay = 1; };")
    check("required = true" in group, "database.required in %r" % group)
    srv = Server(app_config(extra=group), name="pg")
    outage(srv, "database", pg.stop, pg.start)
    srv.stop()
    pg.destroy()


tap.case("database.required: 503 \"degraded\" while PostgreSQL is down",
         pg_required)

jobs = Server(queue_config("jobs", os.path.join(tmpdir(), "jobs.log")),
              name="jobs")


def queue_figures():
    jobs.start()
    fams = metrics(jobs.port)
    eq(fams["pxl_queue_processed_total"]["type"], "counter",
       "processed type")
    eq(fams["pxl_queue_waiting"]["type"], "gauge", "waiting type")
    eq(value(fams, "pxl_queue_waiting", queue="work"), 0, "work waiting")
    check(len(fams["pxl_queue_waiting"]["samples"]) >= 2,
          "a sample per queue: %r" % fams["pxl_queue_waiting"]["samples"])
    jobs.stop()


tap.case("queues: a queue=\"NAME\" sample per queue", queue_figures)

# ---- the admin listener ------------------------------------------------------

admin_port = unused_port()
admin = Server(app_config(extra='admin = { host = "127.0.0.1"; port = %d; };'
                          % admin_port), name="admin")


def admin_listener():
    admin.start()
    check("admin listener on 127.0.0.1:%d" % admin_port in admin.log(),
          "the admin listener is logged")
    status, doc = health(admin_port)
    eq(status, 200, "health on admin")
    check_health_doc(doc, "ok")
    check("pxl_connections" in metrics(admin_port), "metrics on admin")
    eq(http(admin.port, "/health")[0], 404, "health on the WebSocket port")
    eq(http(admin.port, "/metrics")[0], 404, "metrics on the WebSocket port")
    eq(http(admin_port, "/nope")[0], 404, "another path on admin")
    eq(http(admin_port, "/metrics", method="POST")[0], 405, "POST on admin")
    eq(http(admin_port, raw=b"BAD\r\n\r\n")[0], 400, "garbage on admin")
    eq(http(admin_port, raw=b"GET /health HTTP/1.1\r\nX: " + b"b" * 9000 +
            b"\r\n\r\n")[0], 400, "too large on admin")
    # A client that sends nothing is dropped at limits.handshake_timeout;
    # the others are served meanwhile.
    idle = socket.create_connection(("127.0.0.1", admin_port))
    try:
        eq(health(admin_port)[0], 200, "health next to an idle client")
    finally:
        idle.close()
    admin.stop()


tap.case("admin group: the endpoints move to their own listener",
         admin_listener)

# ---- Redis required ---------------------------------------------------------

redis = RedisServer()
degraded = None


def redis_required():
    global degraded
    redis.start()
    degraded = Server(app_config(extra=redis.config(required=True)),
                      name="redis")
    outage(degraded, "redis", redis.stop, redis.start)
    check(value(metrics(degraded.port), "pxl_redis_reconnects_total") >= 1,
          "the reconnect is counted")
    degraded.stop()


tap.case("redis.required: 503 \"degraded\" while Redis is down",
         redis_required)

# ---- a cluster ------------------------------------------------------------

cluster = None


async def cluster_scrape():
    global cluster
    cluster = Server(app_config(extra="workers = 2;\n" + redis.config()),
                     name="cluster", workers=2)
    cluster.start()
    pids = {pid: slot for slot, pid in cluster.worker_pids().items()}
    eq(len(pids), 2, "two workers")
    clients, by_slot = [], {0: 0, 1: 0}
    sent = {0: 0, 1: 0}
    try:
        for i in range(40):
            c = await connect(cluster.url())
            await c.hello()
            r = await c.request("test", "pid")
            slot = pids[r["response"]["pid"]]
            clients.append((c, slot))
            by_slot[slot] += 1
            sent[slot] += 1
            if len(clients) >= 6 and min(by_slot.values()) >= 2:
                break
        check(min(by_slot.values()) >= 1,
              "clients on both workers: %r" % by_slot)
        for i, (c, slot) in enumerate(clients):
            for k in range(3):
                await c.request("test", "echo", k)
                sent[slot] += 1

        def covered():
            fams = metrics(cluster.port)
            conns = fams["pxl_connections"]["samples"]
            if set(conns) != {(("worker", "0"),), (("worker", "1"),)}:
                return False
            for slot in (0, 1):
                w = str(slot)
                if value(fams, "pxl_connections", worker=w) != by_slot[slot]:
                    return False
                if value(fams, "pxl_messages_received_total",
                         worker=w) < sent[slot]:
                    return False
            return fams

        # Several scrapes: whichever worker answers, each shows both.
        for n in range(6):
            fams = wait_until(covered, 5, "scrape %d to cover both "
                              "workers" % n)
        eq(sum(fams["pxl_connections"]["samples"].values()), len(clients),
           "connections over the node")
        status, doc = health(cluster.port)
        eq(status, 200, "cluster health")
        eq(doc["connections"], len(clients), "health counts the node")
    finally:
        await close_all([c for c, _ in clients])
    await astop_servers(tap, [cluster], name="%s server exits 0, clean log")


tap.case("cluster: one scrape shows both workers' traffic",
         lambda: asyncio.run(cluster_scrape()))
tap.case("redis-server stops", redis.stop)

# ---- config errors --------------------------------------------------------


def config_errors():
    for extra, key in (
            ('metrics = { allow = [ "10.0.0.0/33" ]; };', "metrics.allow"),
            ('health = { allow = [ "localhost" ]; };', "health.allow"),
            ('health = { path = "/ws"; };', "health.path"),
            ('metrics = { path = "/health"; };', "metrics.path"),
            ('metrics = { path = "metrics"; };', "metrics.path")):
        s = Server(app_config(extra=extra), name="bad")
        rc, out, err = run_serve(["-t", s.cfg])
        eq(rc, 1, "pxl-serve -t with %s" % extra)
        check(key in err, "%s named in %r" % (key, err))
    # With an admin group the paths may be listen.path's (another port).
    s = Server(app_config(extra='health = { path = "/ws"; };\n'
                          'admin = { port = %d; };' % unused_port()),
               name="ok")
    rc, out, err = run_serve(["-t", s.cfg])
    eq(rc, 0, "health.path = listen.path on an admin listener: %s" % err)


tap.case("bad allow entries and clashing paths are config errors",
         config_errors)
tap.done()
