"""
test_metrics - the live per-worker metrics (pxl_metrics() through
testkit's test/metrics) match the traffic this test sends to a fresh
server: connects, disconnects, current connections and clients, rooms,
messagesIn (exact), messagesOut and bytes for a known exchange, errors by
kind (parse, envelope, unknown route, handler), authFailures for refused
tokens; perSecond present; and metrics.log_interval logs
"metrics connections=" lines, each counter a field of its own: KEY=N in
logfmt, a JSON number with log.format = "json".
"""
import asyncio
import json
import os
import sys
import time

sys.dont_write_bytecode = True

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from pxltest import (TAP, RawWS, Server, app_config,  # noqa: E402
                     astop_servers, check, eq, jwt_hs, loads, new_key,
                     upgrade_request)
from pxlws import close_all, connect, poll  # noqa: E402

tap = TAP()
tap.deadline(60)

SECRET = "metrics-secret"
COUNTERS = ("connects", "disconnects", "messagesIn", "messagesOut",
            "errorsParse", "errorsUnknownRoute", "errorsHandler",
            "authFailures", "connections", "rooms")


class Traffic:
    """What this test sent: data messages in, replies out."""

    def __init__(self):
        self.messages_in = 0

    async def send(self, c, text):
        self.messages_in += 1
        await c.send(text)

    async def request(self, c, text):
        """Send text, return the reply as (object, raw text)."""
        await self.send(c, text)
        raw = await c.recv_raw()
        check(isinstance(raw, str), "reply is not text: %r" % (raw,))
        return loads(raw), raw

    async def metrics(self, c):
        r, _ = await self.request(c, '{"type":"test","action":"metrics"}')
        check(isinstance(r, dict) and set(r) == {"type", "action",
                                                   "response"}
              and isinstance(r["response"], dict),
              "test/metrics reply %r" % (r,))
        return r["response"]


def counters(m, what):
    missing = [k for k in COUNTERS if k not in m]
    eq(missing, [], "%s: metrics keys missing" % what)
    for k in COUNTERS:
        v = m[k]
        check(isinstance(v, int) and not isinstance(v, bool) and v >= 0,
              "%s: %s = %r is not a non-negative integer" % (what, k, v))
    return m


def expect(m, what, **exp):
    got = {k: m.get(k) for k in exp}
    eq(got, exp, what)


async def poll_metrics(tr, c, pred, what, timeout=5):
    """Ask test/metrics until pred() holds for the reply; return it."""
    last = []

    async def metrics_ok():
        last[:] = [await tr.metrics(c)]
        return last[0] if pred(last[0]) else None
    return await poll(metrics_ok, timeout,
                      lambda: "%s; last metrics %r" % (what, last[0]))


def refused_401(port, token):
    c = RawWS(port)
    try:
        c.send(upgrade_request(path="/ws?token=" + token, key=new_key()))
        r = c.read_response()
        eq(r.status, 401, "status for a bad token")
    finally:
        c.close()


# ---- the traffic scenario, one case per step --------------------------------

class Scenario:
    def __init__(self, srv):
        self.srv = srv
        self.tr = Traffic()
        self.obs = None
        self.others = []
        self.m = None

    async def first(self):
        """A fresh server: one client, everything else zero."""
        self.obs = await connect(self.srv.url())
        m = counters(await self.tr.metrics(self.obs), "first snapshot")
        expect(m, "first snapshot", connects=1, disconnects=0,
               connections=1, messagesIn=1, errorsParse=0,
               errorsUnknownRoute=0, errorsHandler=0, authFailures=0,
               rooms=0)
        check(m.get("clients") in (None, 1), "clients = %r" % m.get("clients"))

    async def per_second(self):
        m = await self.tr.metrics(self.obs)
        ps = m.get("perSecond")
        check(isinstance(ps, dict), "perSecond is not an object: %r" % (ps,))
        for k in ("messagesIn", "messagesOut", "connects", "disconnects"):
            check(k in ps, "perSecond has no %s: %r" % (k, ps))
        for k, v in ps.items():
            check(isinstance(v, (int, float)) and not isinstance(v, bool)
                  and v >= 0, "perSecond.%s = %r" % (k, v))

    async def connects(self):
        for _ in range(4):
            self.others.append(await connect(self.srv.url()))
        # Close two; the server counts them when it has seen the close.
        gone = self.others[2:]
        self.others = self.others[:2]
        await close_all(gone)
        m = await poll_metrics(self.tr, self.obs,
                               lambda m: m["disconnects"] >= 2,
                               "2 disconnects")
        expect(m, "after 4 more connects and 2 disconnects", connects=5,
               disconnects=2, connections=3)

    async def messages_in(self):
        a, b = self.others
        for i in range(10):
            r, _ = await self.tr.request(
                a, '{"type":"test","action":"echo","data":%d}' % i)
            eq(r, {"type": "test", "action": "echo", "response": i}, "echo")
        for i in range(7):
            await self.tr.request(b, '{"type":"test","action":"nothing"}')
        m = await self.tr.metrics(self.obs)
        eq(m["messagesIn"], self.tr.messages_in,
           "messagesIn after %d messages" % self.tr.messages_in)

    async def errors(self):
        a = self.others[0]
        for bad in ("{", "not json", '{"type":"test","action":"echo",}'):
            r, _ = await self.tr.request(a, bad)
            eq(r["data"], {"error": "Failed to parse JSON"}, "parse error")
        for bad in ("[]", '{"action":"x"}'):
            r, _ = await self.tr.request(a, bad)
            check(r.get("type") == "error", "envelope error %r" % (r,))
        for i in range(4):
            r, _ = await self.tr.request(
                a, '{"type":"nope","action":"x%d"}' % i)
            eq(r["data"], {"error": "Unknown route: nope/x%d" % i},
               "unknown route")
        for raw in ('{"type":"test","action":"fail","data":"a"}',
                    '{"type":"test","action":"fail"}',
                    '{"type":"test","action":"failPlain"}'):
            r, _ = await self.tr.request(a, raw)
            check(r.get("type") == "error", "handler error %r" % (r,))
        m = await self.tr.metrics(self.obs)
        expect(m, "error counters", errorsParse=3, errorsUnknownRoute=4,
               errorsHandler=3, messagesIn=self.tr.messages_in)
        if "errorsEnvelope" in m:
            eq(m["errorsEnvelope"], 2, "errorsEnvelope")

    async def auth_failures(self):
        for tok in (jwt_hs({"sub": "1"}, "wrong-secret"),
                    jwt_hs({"sub": "1", "exp": int(time.time()) - 100},
                           SECRET)):
            await asyncio.to_thread(refused_401, self.srv.port, tok)
        m = await self.tr.metrics(self.obs)
        expect(m, "after two refused tokens", authFailures=2, connects=5,
               connections=3)

    async def rooms(self):
        a, b = self.others
        for c, room in ((a, "r1"), (a, "r2"), (b, "r2"), (b, "r3")):
            r, _ = await self.tr.request(
                c, '{"type":"system","action":"joinRoom","data":'
                   '{"roomName":"%s"}}' % room)
            eq(r["response"]["success"], True, "joinRoom")
        m = await self.tr.metrics(self.obs)
        expect(m, "rooms after joins", rooms=3)
        await self.tr.send(b, '{"type":"system","action":"leaveRoom",'
                              '"data":{"roomName":"r3"}}')
        await b.recv()  # leftRoom
        await b.recv()  # reply
        m = await self.tr.metrics(self.obs)
        expect(m, "rooms after the last member left r3", rooms=2)
        await b.close()
        self.others = [a]
        m = await poll_metrics(self.tr, self.obs,
                               lambda m: m["disconnects"] >= 3,
                               "the third disconnect")
        expect(m, "rooms after b disconnected (r2 still has a)", rooms=2,
               connections=2, disconnects=3)
        await a.close()
        self.others = []
        m = await poll_metrics(self.tr, self.obs,
                               lambda m: m["disconnects"] >= 4,
                               "the fourth disconnect")
        expect(m, "rooms after a disconnected", rooms=0, connections=1,
               messagesIn=self.tr.messages_in)

    async def out_and_bytes(self):
        """A known exchange between two snapshots: messagesOut and bytes."""
        c = self.obs
        m0 = await self.tr.metrics(c)
        texts_in = ['{"type":"test","action":"echo","data":"%s"}' % ("x" * n)
                    for n in (1, 100, 300, 70000)]
        out_len = 0
        for t in texts_in:
            _, raw = await self.tr.request(c, t)
            out_len += len(raw.encode())
        m1 = await self.tr.metrics(c)
        # In: the 4 echoes and the second metrics request.
        last = '{"type":"test","action":"metrics"}'
        payload_in = sum(len(t) for t in texts_in) + len(last)
        eq(m1["messagesIn"] - m0["messagesIn"], 5, "messagesIn delta")
        # Out: the first metrics reply and the 4 echo replies.
        eq(m1["messagesOut"] - m0["messagesOut"], 5, "messagesOut delta")
        if "bytesIn" in m1:
            d = m1["bytesIn"] - m0["bytesIn"]
            check(payload_in <= d <= payload_in + 5 * 14,
                  "bytesIn grew by %d for %d payload bytes in 5 frames"
                  % (d, payload_in))
        if "bytesOut" in m1:
            d = m1["bytesOut"] - m0["bytesOut"]
            # The first metrics reply's length is not known exactly.
            check(out_len < d <= out_len + 4096,
                  "bytesOut grew by %d for %d reply bytes"
                  % (d, out_len))


async def t_log_interval(srv):
    start = time.monotonic()

    def has_line():
        return "metrics connections=" in srv.log()
    while not has_line():
        check(time.monotonic() - start < 3, "no \"metrics connections=\" "
              "line within 3 s:\n" + srv.log()[-2000:])
        await asyncio.sleep(0.05)
    c = await connect(srv.url())
    try:
        await c.send('{"type":"test","action":"echo","data":1}')
        await c.recv()
        t1 = time.monotonic()
        while "metrics connections=1 " not in srv.log():
            check(time.monotonic() - t1 < 3, "no \"metrics connections=1\" "
                  "line within 3 s of a connect:\n" + srv.log()[-2000:])
            await asyncio.sleep(0.05)
    finally:
        await c.close()


METRIC_FIELDS = ("connections", "rooms", "messages_in", "messages_out",
                 "in_per_sec", "out_per_sec", "bytes_in", "bytes_out",
                 "connects", "disconnects", "auth_failures")


async def t_log_json(srv):
    """log.format = "json": the metrics line's counters are numbers,
    fields of the line's object, not words of its msg."""
    def lines():
        out = []
        for x in srv.log().splitlines():
            try:
                o = json.loads(x)
            except ValueError:
                continue
            if isinstance(o, dict) and o.get("msg") == "metrics":
                out.append(o)
        return out

    async def found():
        return lines()
    got = (await poll(found, timeout=3, what="a JSON metrics line"))[0]
    for k in METRIC_FIELDS:
        check(isinstance(got.get(k), int) and not isinstance(got[k], bool),
              "%s is not a number: %r" % (k, got))
    eq(set(got) - set(METRIC_FIELDS), {"ts", "level", "msg"},
       "other keys of the line")


async def t_no_log_by_default(srv):
    eq("metrics connections=" in srv.log(), False,
       "metrics line without metrics.log_interval")


async def main():
    srv = Server(app_config(("system", "testkit"),
                            extra='auth = { jwt = { secret = "%s"; }; };'
                                  % SECRET), "metrics")
    logsrv = Server(app_config(("testkit",),
                               extra="metrics = { log_interval = 1; };"),
                    "metrics_log")
    jsonsrv = Server(app_config(("testkit",), log_format="json",
                                extra="metrics = { log_interval = 1; };"),
                     "metrics_json")
    servers = [srv, logsrv, jsonsrv]
    A = tap.acase
    sc = Scenario(srv)
    try:
        srv.start()
        logsrv.start()
        jsonsrv.start()
        await A("fresh server, one client: connects 1, connections 1, "
                "messagesIn 1, errors 0", sc.first)
        await A("perSecond is an object of rates", sc.per_second)
        await A("connects and disconnects counted; connections current",
                sc.connects)
        await A("messagesIn counts every data message exactly",
                sc.messages_in)
        await A("errorsParse 3, errorsUnknownRoute 4, errorsHandler 3",
                sc.errors)
        await A("authFailures 2 after two refused tokens; connects unchanged",
                sc.auth_failures)
        await A("rooms: current count through joins, leave, disconnects",
                sc.rooms)
        await A("messagesOut and bytes for a known exchange",
                sc.out_and_bytes)
        await A("metrics.log_interval = 1: \"metrics connections=\" lines "
                "within 3 s", t_log_interval, logsrv)
        await A("log.format = \"json\": the metrics line's counters are "
                "JSON numbers", t_log_json, jsonsrv)
        await A("no metrics log line when log_interval is not set",
                t_no_log_by_default, srv)
    finally:
        if sc.obs is not None:
            await close_all([sc.obs] + sc.others)
        await astop_servers(tap, servers)


tap.run(main)
