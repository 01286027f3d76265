"""
test_activity - idle clients and dead peers (PROTOCOL.md "Activity,
heartbeat, close codes"): inactivity.max_idle closes an idle client with
4000 "inactive" within [max_idle, max_idle + check_interval + 1] s of its
last activity; data messages and client pings count as activity, pongs do
not; heartbeat closes a client that never answers pings with 4001
"heartbeat timeout" and leaves python-websockets (which answers) alone;
a heartbeat close comes heartbeat.timeout after the unanswered ping (at
most HB_BOUND s later), not at the next heartbeat.interval tick, and is
logged like an inactivity close; both are off by default. Timing windows are measured with
time.monotonic(); the independent cases run concurrently. Afterwards each
server's closedInactive and closedHeartbeat count exactly the 4000 and
4001 closes its clients got.
"""
import asyncio
import os
import struct
import sys
import time

sys.dont_write_bytecode = True

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from pxltest import (TAP, RawWS, Server, app_config,  # noqa: E402
                     astop_servers, check, eq, load_slack, wait_until)
from pxlws import connect, reply  # noqa: E402

tap = TAP()
tap.deadline(60)

MAX_IDLE = 2
CHECK = 1
LATEST = MAX_IDLE + CHECK + 1   # PROTOCOL.md's bound
GRACE = 0.25                    # loopback + sanitizer scheduling, idle


def grace():
    """Slack for the late bounds: GRACE plus 4 x the slowest server
    start-up, at most 0.75 s more (an ASan build starts in 0.08 s on an
    idle 2-core VM, so about 0.3 s there, more under make -j2 check).
    Those bounds catch a close that never comes or waits for something
    else (a sweep at the default check_interval of 60 s, the default
    heartbeat timeout of 30 s): 1 s more is still far from that."""
    return GRACE + load_slack(4, 0.75)

PING, PONG, CLOSE, TEXT = 9, 10, 8, 1

# pxl.cfg(5), pxl-protocol(7): a 4001 comes at most this long after the
# ping's heartbeat.timeout (the one timer's lateness on a busy worker).
HB_BOUND = 0.1


async def echo(c, tag):
    await c.send_json({"type": "test", "action": "echo", "data": tag})
    eq(await c.recv(), reply("test", "echo", tag), "echo reply")


async def wait_close(c, timeout=10):
    """Wait for the server's close; (code, reason, monotonic time)."""
    import websockets
    try:
        while True:
            m = await asyncio.wait_for(c.ws.recv(), timeout)
            raise AssertionError("unexpected frame before the close: %r"
                                 % (m,))
    except websockets.ConnectionClosed:
        t = time.monotonic()
    await asyncio.wait_for(c.ws.wait_closed(), timeout)
    return c.ws.close_code, c.ws.close_reason, t


def window(t_close, t_before, t_after, what):
    """The close came no earlier than MAX_IDLE after the last activity
    (which the server saw between t_before and t_after) and no later than
    LATEST after it."""
    early = t_close - t_before
    late = t_close - t_after
    tap.diag("%s: closed %.3f-%.3f s after the last activity"
             % (what, late, early))
    check(early >= MAX_IDLE,
          "%s: closed %.3f s after the last activity, earlier than "
          "max_idle = %d" % (what, early, MAX_IDLE))
    check(late <= LATEST + grace(),
          "%s: closed %.3f s after the last activity, later than "
          "max_idle + check_interval + 1 = %d s (+%.2f s grace)"
          % (what, late, LATEST, grace()))


# ---- inactivity -------------------------------------------------------------

async def t_idle_after_message(url):
    c = await connect(url)
    try:
        await echo(c, "first")
        t_before = time.monotonic()
        await echo(c, "last")
        t_after = time.monotonic()
        code, reason, t = await wait_close(c)
        eq((code, reason), (4000, "inactive"), "close code and reason")
        window(t, t_before, t_after, "idle client")
    finally:
        await c.close()


async def t_idle_from_connect(url):
    t_before = time.monotonic()
    c = await connect(url)
    try:
        cid = await c.hello()
        t_after = time.monotonic()
        check(cid, "no client id")
        code, reason, t = await wait_close(c)
        eq((code, reason), (4000, "inactive"), "close code and reason")
        window(t, t_before, t_after, "client idle since connecting")
    finally:
        await c.close()


async def t_active_messages(url):
    c = await connect(url)
    try:
        start = time.monotonic()
        n = 0
        while time.monotonic() - start < 5.5:
            await echo(c, n)
            n += 1
            await asyncio.sleep(0.5)
        await echo(c, "still open after %.1f s" % (time.monotonic() - start))
        check(n >= 10, "only %d messages sent" % n)
    finally:
        await c.close()


async def t_active_pings(url):
    c = await connect(url)
    try:
        await c.hello()
        start = time.monotonic()
        n = 0
        while time.monotonic() - start < 5.5:
            waiter = await c.ws.ping(b"p%d" % n)
            await asyncio.wait_for(waiter, 5)
            n += 1
            await asyncio.sleep(0.5)
        await echo(c, "still open after pings only")
        check(n >= 10, "only %d pings sent" % n)
    finally:
        await c.close()


def raw_answering_pongs(port):
    """A raw client that sends nothing and answers every server ping:
    returns (pings answered, close code, reason, t_before, t_after,
    t_close)."""
    t_before = time.monotonic()
    c = RawWS(port, timeout=10)
    try:
        c.handshake()
        t_after = time.monotonic()
        _, _, op, payload = c.recv_frame()  # pings come after connected
        pings = 0
        while True:
            if op == PING:
                c.send_frame(PONG, payload)
                pings += 1
            elif op == CLOSE:
                t = time.monotonic()
                code = struct.unpack("!H", payload[:2])[0]
                return pings, code, payload[2:].decode(), t_before, \
                    t_after, t
            else:
                raise AssertionError("unexpected frame opcode %d %r"
                                     % (op, payload[:100]))
            _, _, op, payload = c.recv_frame()
    finally:
        c.close()


async def t_pongs_do_not_count_raw(srv):
    pings, code, reason, t0, t1, t = await asyncio.to_thread(
        raw_answering_pongs, srv.port)
    eq((code, reason), (4000, "inactive"), "close code and reason (pings "
       "answered: %d)" % pings)
    check(pings >= 1, "the server sent no ping before the close")
    window(t, t0, t1, "client answering pings only")


async def t_pongs_do_not_count_ws(url):
    """python-websockets answers server pings on its own."""
    t_before = time.monotonic()
    c = await connect(url)
    try:
        await c.hello()
        t_after = time.monotonic()
        code, reason, t = await wait_close(c)
        eq((code, reason), (4000, "inactive"), "close code and reason")
        window(t, t_before, t_after, "python-websockets client, heartbeat on")
    finally:
        await c.close()


# ---- heartbeat --------------------------------------------------------------

def raw_ignoring_pings(port):
    """A raw client that never answers: (pings, first ping time, code,
    reason, t_connected, t_close)."""
    c = RawWS(port, timeout=15)
    try:
        c.handshake()
        t0 = time.monotonic()
        pings = 0
        first = None
        while True:
            _, _, op, payload = c.recv_frame()
            if op == PING:
                pings += 1
                if first is None:
                    first = time.monotonic()
            elif op == CLOSE:
                t = time.monotonic()
                check(len(payload) >= 2, "close without a code")
                code = struct.unpack("!H", payload[:2])[0]
                return pings, first, code, payload[2:].decode(), t0, t
            else:
                raise AssertionError("unexpected frame opcode %d %r"
                                     % (op, payload[:100]))
    finally:
        c.close()


async def t_heartbeat_timeout(srv):
    pings, first, code, reason, t0, t = await asyncio.to_thread(
        raw_ignoring_pings, srv.port)
    eq((code, reason), (4001, "heartbeat timeout"), "close code and reason")
    check(pings >= 1 and first is not None, "no ping before the close")
    # The first ping is timed when this thread reads it, which a loaded
    # machine delays: 0.1 s, plus up to 0.4 s more (2 x the slowest
    # start-up). The bound stays above 1.5 s, so it still catches a close
    # at the first check after the ping (1 s) instead of after the timeout.
    early = 0.1 + load_slack(2, 0.4)
    check(t - first >= 2 - early,
          "closed %.3f s after the first ping, before heartbeat.timeout = 2 "
          "(-%.2f s for a late read of the ping)" % (t - first, early))
    check(t - t0 <= 1 + 2 + 1 + 1 + grace(),
          "closed %.3f s after connecting; expected within interval + "
          "timeout + 2 s (+%.2f s grace)" % (t - t0, grace()))


async def t_heartbeat_timeout_not_interval(srv, figures):
    """interval = 4, timeout = 1: the close comes 1 s after the ping (it
    came at the next tick, 4 s after it, when the check ran per tick)."""
    pings, first, code, reason, t0, t = await asyncio.to_thread(
        raw_ignoring_pings, srv.port)
    eq((code, reason), (4001, "heartbeat timeout"), "close code and reason")
    eq(pings, 1, "pings before the close")
    gap = t - first
    figures.append(gap)
    # Both frames are timed when this thread reads them: a late read of
    # the ping shortens the gap, a late read of the close lengthens it.
    early = 0.1 + load_slack(2, 0.4)
    check(gap >= 1 - early,
          "closed %.3f s after the ping, before heartbeat.timeout = 1 "
          "(-%.2f s for a late read of the ping)" % (gap, early))
    check(gap <= 1 + HB_BOUND + grace(),
          "closed %.3f s after the ping; expected within heartbeat.timeout "
          "= 1 + %.1f s (+%.2f s grace)" % (gap, HB_BOUND, grace()))
    # Logged like an inactivity close: INFO, with the client, how long.
    await asyncio.to_thread(wait_until, lambda: "no pong" in srv.log(), 5,
                            "the heartbeat close's log")
    line = [x for x in srv.log().splitlines() if "no pong" in x][0]
    check("level=info" in line and "client=" in line and
          "ms after the ping, closing" in line,
          "heartbeat close log line: %r" % line)


async def t_heartbeat_ws_stays(url):
    c = await connect(url)
    try:
        await c.hello()
        start = time.monotonic()
        # Idle for 5 s: the close would arrive as ConnectionClosed.
        try:
            m = await asyncio.wait_for(c.ws.recv(), 5)
            raise AssertionError("unexpected frame %r" % (m,))
        except asyncio.TimeoutError:
            pass
        check(time.monotonic() - start >= 5, "did not wait")
        await echo(c, "alive after 5 s of heartbeats")
    finally:
        await c.close()


def raw_sees_nothing(port, seconds):
    c = RawWS(port, timeout=10)
    try:
        c.handshake()
        c.sock.settimeout(seconds)
        try:
            f = c.recv_frame()  # skips the connected frame
            raise AssertionError("unexpected frame while idle: %r" % (f,))
        except AssertionError as e:
            if "timed out" not in str(e):
                raise
        check(c.connected is not None, "no system/connected frame")
        eq(c.buf, b"", "partial frame while idle")
        c.sock.settimeout(10)
        c.send_frame(TEXT, '{"type":"test","action":"echo","data":"x"}')
        _, _, op, payload = c.recv_frame()
        eq((op, payload), (TEXT, b'{"type":"test","action":"echo",'
                           b'"response":"x"}'), "echo after idling")
    finally:
        c.close()


async def t_defaults_off(srv):
    c = await connect(srv.url())
    try:
        await c.hello()
        try:
            m = await asyncio.wait_for(c.ws.recv(), 3)
            raise AssertionError("unexpected frame %r" % (m,))
        except asyncio.TimeoutError:
            pass
        await echo(c, "open after 3 s idle with no inactivity config")
    finally:
        await c.close()


async def t_defaults_no_ping(srv):
    await asyncio.to_thread(raw_sees_nothing, srv.port, 3)


# ---- counters ---------------------------------------------------------------

async def t_close_counters(srv, inactive, heartbeat):
    """A fresh client asks for the server's metrics: the closes this file
    provoked on that server, exactly (every server starts with zero)."""
    c = await connect(srv.url())
    try:
        r = await c.request("test", "metrics")
        m = r["response"]
        eq({k: m.get(k) for k in ("closedInactive", "closedHeartbeat")},
           {"closedInactive": inactive, "closedHeartbeat": heartbeat},
           "close counters of %s" % os.path.basename(srv.cfg))
    finally:
        await c.close()


# ---- main -------------------------------------------------------------------

async def parallel(cases):
    """Run (name, fn, args) cases concurrently; report in the given order."""
    async def one(fn, args):
        try:
            await asyncio.wait_for(fn(*args), 30)
        except asyncio.TimeoutError:
            return "timed out after 30 s"
        except Exception as e:  # noqa: BLE001
            from pxltest import describe
            return describe(e)
        return None
    results = await asyncio.gather(*(one(fn, args) for _, fn, args in cases))
    for (name, _, _), err in zip(cases, results):
        tap.ok(err is None, name, err)


async def main():
    idle = Server(app_config(("testkit",), extra="inactivity = { max_idle = "
                             "%d; check_interval = %d; };"
                             % (MAX_IDLE, CHECK)), "idle")
    both = Server(app_config(("testkit",), extra="inactivity = { max_idle = "
                             "%d; check_interval = %d; };\nheartbeat = { "
                             "interval = 1; timeout = 30; };"
                             % (MAX_IDLE, CHECK)), "idle_heartbeat")
    hb = Server(app_config(("testkit",), extra="heartbeat = { interval = 1; "
                           "timeout = 2; };"), "heartbeat")
    hb4 = Server(app_config(("testkit",), extra="heartbeat = { interval = 4; "
                            "timeout = 1; };"), "heartbeat_4_1")
    plain = Server(app_config(("testkit",)), "defaults")
    servers = [idle, both, hb, hb4, plain]
    figures = []
    try:
        for s in servers:
            s.start()
        await parallel([
            ("inactivity: idle client closed with 4000 inactive within "
             "[2, 4] s of its last message", t_idle_after_message,
             (idle.url(),)),
            ("inactivity: client idle since connecting closed with 4000 "
             "within [2, 4] s", t_idle_from_connect, (idle.url(),)),
            ("inactivity: a message every 0.5 s keeps a client open past 5 s",
             t_active_messages, (idle.url(),)),
            ("inactivity: client pings every 0.5 s keep a client open past "
             "5 s", t_active_pings, (idle.url(),)),
            ("pongs do not count: a raw client answering every server ping is"
             " closed with 4000", t_pongs_do_not_count_raw, (both,)),
            ("pongs do not count: python-websockets (answers pings) closed "
             "with 4000 when heartbeat is on", t_pongs_do_not_count_ws,
             (both.url(),)),
            ("heartbeat: a raw client that never answers pings is closed "
             "with 4001 heartbeat timeout", t_heartbeat_timeout, (hb,)),
            ("heartbeat: interval = 4, timeout = 1: a silent client is "
             "closed 1 s after the ping (+%.1f s), not at the next tick, "
             "and the close is logged" % HB_BOUND,
             t_heartbeat_timeout_not_interval, (hb4, figures)),
            ("heartbeat: python-websockets answers pings and stays open 5 s",
             t_heartbeat_ws_stays, (hb.url(),)),
            ("defaults: no inactivity close after 3 s idle",
             t_defaults_off, (plain,)),
            ("defaults: no heartbeat ping in 3 s", t_defaults_no_ping,
             (plain,)),
        ])
        for gap in figures:
            tap.diag("interval = 4, timeout = 1: ping to close %.3f s" % gap)
        # The cases above closed 2 idle clients on idle, 2 on both, and one
        # silent client (heartbeat) on hb; the rest closed themselves.
        for srv, inactive, heartbeat in ((idle, 2, 0), (both, 2, 0),
                                         (hb, 0, 1), (hb4, 0, 1),
                                         (plain, 0, 0)):
            await tap.acase("metrics of %s: closedInactive %d, "
                            "closedHeartbeat %d"
                            % (os.path.basename(srv.cfg)[:-4], inactive,
                               heartbeat), t_close_counters, srv, inactive,
                            heartbeat)
    finally:
        await astop_servers(tap, servers)


tap.run(main)
