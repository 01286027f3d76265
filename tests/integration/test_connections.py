"""
test_connections - connection life cycles through a real pxl-serve with
python3-websockets: big messages, many sequential and concurrent clients,
max_connections (503, counted in refusedUpgrades), connect/disconnect
hooks counted once each, closes started by the server, a client that
stops reading (closed with 4009 "too slow" once the server has queued
limits.max_output_bytes for it, counted in errorsSlowConsumer), and
SIGTERM (1001 to every client, exit 0).
"""
import asyncio
import os
import struct
import sys

sys.dont_write_bytecode = True

import websockets

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from pxltest import (TAP, RawWS, Server, app_config,  # noqa: E402
                     astop_servers, check, dumps, eq, error_frame, loads,
                     upgrade_request, new_key)
from pxlws import connect, poll, reply  # noqa: E402

tap = TAP()
tap.deadline(60)

MiB = 1024 * 1024


async def t_big_text(url, n):
    c = await connect(url, max_size=4 * n + 4096)
    try:
        data = ("0123456789abcdef\u00e9" * (n // 18 + 1))
        data = data.encode()[:n].decode("utf-8", "ignore")
        await c.send_json({"type": "test", "action": "echo", "data": data,
                           "requestId": n})
        got = await c.recv(30)
        check(got == reply("test", "echo", data, n),
              "big reply differs (got %d chars of response, keys %r)"
              % (len(got.get("response") or ""), sorted(got)))
    finally:
        await c.close()


async def t_big_binary(url, n):
    c = await connect(url, max_size=n + 4096)
    try:
        data = os.urandom(n)
        await c.send(data)
        got = await c.recv_raw(30)
        check(isinstance(got, bytes), "binary echo came back as text")
        check(got == data, "binary echo of %d bytes differs (got %d)"
              % (n, len(got)))
    finally:
        await c.close()


async def stats(c):
    r = await c.request("test", "stats")
    eq(sorted(r), ["action", "response", "type"], "stats reply keys")
    eq(sorted(r["response"]), ["clientId", "connects", "disconnects",
                               "greeting", "lastCloseCode", "reloads"],
       "stats keys")
    return r["response"]


async def wait_disconnects(c, n, timeout=10):
    """Poll test/stats on the open client c until disconnects >= n."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while True:
        s = await stats(c)
        if s["disconnects"] >= n:
            return s
        if loop.time() > end:
            raise AssertionError("disconnects never reached %d: %r" % (n, s))
        await asyncio.sleep(0.005)


def counters(s):
    return {k: s[k] for k in ("connects", "disconnects", "lastCloseCode")}


async def t_sequential(url, n):
    obs = await connect(url)
    try:
        s0 = await stats(obs)
        for i in range(n):
            c = await connect(url)
            if i % 100 == 0:
                eq(await c.request("test", "echo", i, i),
                   reply("test", "echo", i, i), "reply on connection %d" % i)
            await c.close()
            check(c.ws.close_code == 1000, "connection %d closed with %r"
                  % (i, c.ws.close_code))
        s = await wait_disconnects(obs, s0["disconnects"] + n)
        eq(counters(s), {"connects": s0["connects"] + n,
                         "disconnects": s0["disconnects"] + n,
                         "lastCloseCode": 1000}, "hook counters")
    finally:
        await obs.close()


async def t_concurrent(url, n):
    clients = await asyncio.gather(*[connect(url) for _ in range(n)])
    try:
        async def one(i, c):
            await c.send_json({"type": "test", "action": "echo",
                               "data": {"i": i}, "requestId": "c%d" % i})
            eq(await c.recv(30), reply("test", "echo", {"i": i}, "c%d" % i),
               "reply of client %d" % i)
        await asyncio.gather(*[one(i, c) for i, c in enumerate(clients)])
        ids = await asyncio.gather(*[c.request("test", "stats")
                                     for c in clients[:20]])
        ids = {r["response"]["clientId"] for r in ids}
        eq(len(ids), 20, "distinct clientIds among 20 clients")
    finally:
        await asyncio.gather(*[c.close() for c in clients],
                             return_exceptions=True)


async def t_hooks(srv):
    url = srv.url()
    obs = await connect(url)
    try:
        s = await stats(obs)
        eq(counters(s), {"connects": 1, "disconnects": 0,
                         "lastCloseCode": 0}, "fresh server, one client")
        eq(s["greeting"], "hi", "greeting from the plugin's settings")
        a = await connect(url)
        eq((await stats(a))["connects"], 2, "connects while open")
        await a.close(3001, "bye")
        eq(counters(await wait_disconnects(obs, 1)),
           {"connects": 2, "disconnects": 1, "lastCloseCode": 3001},
           "after a client closed with 3001")
        # A close started by the server (test/close) is counted once too.
        b = await connect(url)
        await b.send_json({"type": "test", "action": "close",
                           "data": {"code": 4321, "reason": "r"}})
        eq(await b.wait_closed(), (4321, "r"), "closed by test/close")
        eq(counters(await wait_disconnects(obs, 2)),
           {"connects": 3, "disconnects": 2, "lastCloseCode": 4321},
           "after test/close 4321")
        # Dropping TCP without a close frame: 1006, counted once.
        raw = RawWS(srv.port)
        raw.handshake()
        raw.close()
        eq(counters(await wait_disconnects(obs, 3)),
           {"connects": 4, "disconnects": 3, "lastCloseCode": 1006},
           "after a TCP drop")
        # A refused handshake is never counted.
        with RawWS(srv.port) as bad:
            bad.send(upgrade_request(key=new_key(), version="8"))
            eq(bad.read_response().status, 426, "refused handshake")
            bad.expect_eof()
        e = await connect(url)
        await e.close()
        eq(counters(await wait_disconnects(obs, 4)),
           {"connects": 5, "disconnects": 4, "lastCloseCode": 1000},
           "a refused handshake in between is not counted")
    finally:
        await obs.close()


async def t_server_close(url, code, reason, expect_reason):
    c = await connect(url)
    data = {"code": code}
    if reason is not None:
        data["reason"] = reason
    await c.send_json({"type": "test", "action": "close", "data": data})
    eq(await c.wait_closed(), (code, expect_reason), "(code, reason)")


async def t_bad_close_code(url):
    c = await connect(url)
    try:
        await c.expect(error_frame("bad close code 999", "x", True),
                       raw='{"type":"test","action":"close","data":'
                       '{"code":999},"requestId":"x"}')
        await c.expect(reply("test", "echo", 1),
                       raw='{"type":"test","action":"echo","data":1}')
    finally:
        await c.close()


async def t_max_connections(url, port, limit):
    clients = [await connect(url) for _ in range(limit)]
    try:
        try:
            extra = await connect(url)
        except websockets.InvalidStatusCode as e:
            eq(e.status_code, 503, "status of connection %d" % (limit + 1))
        else:
            await extra.close()
            raise AssertionError("connection %d was accepted" % (limit + 1))
        with RawWS(port) as r:
            r.send(upgrade_request(key=new_key()))
            resp = r.read_response()
            eq(resp.status, 503, "raw status")
            eq(resp.header("content-type"), "text/plain; charset=utf-8",
               "Content-Type")
            check(len(resp.body) > 0, "empty body")
            r.expect_eof()
        eq(counters(await stats(clients[0])),
           {"connects": limit, "disconnects": 0, "lastCloseCode": 0},
           "refused connections are not counted by the hooks")
        m = (await clients[0].request("test", "metrics"))["response"]
        eq({k: m[k] for k in ("refusedUpgrades", "authFailures",
                              "connections")},
           {"refusedUpgrades": 2, "authFailures": 0, "connections": limit},
           "metrics after two 503 refusals on a fresh server")
        await clients.pop().close()
        again = await connect(url)  # the freed slot is usable at once
        clients.append(again)
        eq(await again.request("test", "echo", 1), reply("test", "echo", 1),
           "reply on the reused slot")
    finally:
        await asyncio.gather(*[c.close() for c in clients],
                             return_exceptions=True)


# ---- a client that does not read ---------------------------------------------

SLOW_LIMIT = 65536      # limits.max_output_bytes of the "slow" app
SLOW_MSG = {"type": "m", "action": "fill", "data": "s" * 16384}


def tcp_wmem_max():
    """The most a TCP send buffer may grow to (bytes)."""
    with open("/proc/sys/net/ipv4/tcp_wmem") as f:
        return int(f.read().split()[2])


def drain(raw):
    """Read until the close frame: (data frames, close payload)."""
    frames = 0
    while True:
        fin, rsv, op, data = raw.recv_frame()
        if op == 8:
            return frames, data
        eq((fin, rsv, op), (True, 0, 1), "frame before the close")
        eq(loads(data), SLOW_MSG, "message %d" % (frames + 1))
        frames += 1


async def t_slow_consumer(srv):
    """A raw client with a 4 KiB receive buffer joins a room and never
    reads; another client sends 16 KiB messages into the room
    (test/sendRoom answers with the number of clients reached) until the
    server has given up on the raw client (the answer drops to 0). The
    server queues at most max_output_bytes for it and the kernel's buffers
    hold the rest, so that must happen before max_output_bytes + the
    largest TCP send buffer + 1 MiB were sent. Then the raw client reads
    every message the server accepted for it, a close 4009 "too slow" and
    EOF; errorsSlowConsumer counts that close."""
    raw = RawWS(srv.port, timeout=10, rcvbuf=4096)
    pub = None
    try:
        raw.handshake()
        raw.send_frame(1, '{"type":"system","action":"joinRoom","data":'
                       '{"roomName":"slow"},"requestId":"j"}')
        r = loads(raw.expect_frame(1, None, "joinRoom reply"))
        check(r.get("requestId") == "j" and
              r.get("response", {}).get("success") is True,
              "joinRoom reply %r" % (r,))
        pub = await connect(srv.url())
        m0 = (await pub.request("test", "metrics"))["response"]
        frame_len = len(RawWS.frame(1, dumps(SLOW_MSG), mask=False))
        bound = SLOW_LIMIT + tcp_wmem_max() + 2 ** 20
        accepted = 0
        while True:
            r = await pub.request("test", "sendRoom",
                                  {"room": "slow", "message": SLOW_MSG})
            n = r.get("response")
            if n == 0:
                break
            eq(n, 1, "clients reached by sendRoom %d" % (accepted + 1))
            accepted += 1
            check(accepted * frame_len <= bound,
                  "the server still queued for a client that reads nothing "
                  "after %d bytes (max_output_bytes = %d, largest TCP send "
                  "buffer %d)" % (accepted * frame_len, SLOW_LIMIT,
                                  tcp_wmem_max()))
        tap.diag("slow consumer: closed after %d messages (%d bytes) were "
                 "accepted for it" % (accepted, accepted * frame_len))
        check(accepted * frame_len > SLOW_LIMIT,
              "closed after only %d bytes, less than max_output_bytes"
              % (accepted * frame_len))
        frames, close = await asyncio.to_thread(drain, raw)
        check(len(close) >= 2, "close frame without a code: %r" % close)
        eq((struct.unpack("!H", close[:2])[0], close[2:].decode("utf-8")),
           (4009, "too slow"), "close code and reason")
        eq(frames, accepted, "messages received before the close (every "
           "one the server accepted)")
        await asyncio.to_thread(raw.expect_eof)
        # The server shut its side and lingers until the client closes.
        raw.close()
        m1 = (await pub.request("test", "metrics"))["response"]
        eq(m1["errorsSlowConsumer"] - m0["errorsSlowConsumer"], 1,
           "errorsSlowConsumer delta")

        async def publisher_only():
            m = (await pub.request("test", "metrics"))["response"]
            return m["connections"] == 1
        await poll(publisher_only, what="connections: the publisher only")
    finally:
        raw.close()
        if pub is not None:
            await pub.close()


async def t_sigterm(srv, n):
    url = srv.url()
    clients = [await connect(url) for _ in range(n)]
    for i, c in enumerate(clients):
        eq(await c.request("test", "echo", i), reply("test", "echo", i),
           "reply before shutdown")
    # One client never answers the close: shutdown_timeout drops it.
    mute = RawWS(srv.port)
    mute.handshake()
    srv.terminate()
    closes = await asyncio.gather(*[c.wait_closed() for c in clients])
    eq(closes, [(1001, "server shutting down")] * n, "(code, reason) seen "
       "by every client")
    reason = await asyncio.to_thread(mute.expect_close, 1001)
    eq(reason, "server shutting down", "raw client's close reason")
    await asyncio.to_thread(mute.expect_eof, 15)
    mute.close()
    rc = await asyncio.to_thread(srv.wait, 20)
    eq(rc, 0, "exit code after SIGTERM")
    hooks = srv.log().count("disconnected with 1001")
    eq(hooks, n + 1, "disconnect hooks run with 1001 at shutdown")


async def t_spread(srv, n, spread):
    """shutdown_spread: the 1001s reach n clients oldest first over about
    spread seconds, not all at once."""
    clients = [await connect(srv.url()) for _ in range(n)]
    for c in clients:
        await c.request("test", "echo", 1)
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    srv.terminate()

    async def closed_at(c):
        code = await c.wait_closed(spread + 10)
        return loop.time() - t0, code
    got = await asyncio.gather(*[closed_at(c) for c in clients])
    eq({code for _, code in got}, {(1001, "server shutting down")},
       "(code, reason) seen by every client")
    times = [t for t, _ in got]
    # Ten batches a second: the last batch goes out spread - 0.1 s after
    # the first, give or take a tick.
    check(max(times) - min(times) >= spread - 0.35,
          "closes spread over %.2f s, want about %d s" %
          (max(times) - min(times), spread))
    # Clients connected in list order: none closed a tick before an
    # older one.
    check(all(a <= b + 0.15 for a, b in zip(times, times[1:])),
          "oldest clients closed first: %r" % times)
    eq(await asyncio.to_thread(srv.wait, 20), 0, "exit code")


async def main():
    big = Server(app_config(limits={"max_message_size": 16 * MiB,
                                    "max_frame_size": 16 * MiB,
                                    "max_output_bytes": 32 * MiB}), "big")
    conns = Server(app_config(), "conns")
    hooks = Server(app_config(("echo", '{ path = "testkit"; settings = { '
                               'greeting = "hi"; }; }')), "hooks")
    capped = Server(app_config(limits={"max_connections": 5}), "capped")
    term = Server(app_config(shutdown_timeout=1), "term")
    spread = Server(app_config(extra="shutdown_spread = 2;"), "spread")
    slow = Server(app_config(("system", "testkit"),
                             limits={"max_output_bytes": SLOW_LIMIT}), "slow")
    servers = (big, conns, hooks, capped, term, slow, spread)
    A = tap.acase
    try:
        for s in servers:
            s.start()
        await A("64 KiB text message round trip (test/echo)", t_big_text,
                big.url(), 64 * 1024)
        await A("64 KiB binary message echoed", t_big_binary, big.url(),
                64 * 1024)
        await A("8 MiB text message round trip (test/echo)", t_big_text,
                big.url(), 8 * MiB, timeout=60)
        await A("8 MiB binary message echoed", t_big_binary, big.url(),
                8 * MiB, timeout=60)
        await A("1000 sequential connections, hooks balanced", t_sequential,
                conns.url(), 1000, timeout=60)
        await A("200 concurrent connections, one request each",
                t_concurrent, conns.url(), 200, timeout=60)
        await A("connect/disconnect hooks counted once each", t_hooks,
                hooks)
        await A("server close via test/close: code and reason (4321)",
                t_server_close, hooks.url(), 4321, "custom reason",
                "custom reason")
        await A("server close via test/close: 1000 without reason",
                t_server_close, hooks.url(), 1000, None, "")
        await A("server close via test/close: 3000 with UTF-8 reason",
                t_server_close, hooks.url(), 3000, "f\u00e9rm\u00e9",
                "f\u00e9rm\u00e9")
        await A("test/close with an invalid code: handler error, still open",
                t_bad_close_code, hooks.url())
        await A("max_connections = 5: 6th gets 503 text/plain, slot reused;"
                " refusedUpgrades 2", t_max_connections, capped.url(),
                capped.port, 5)
        await A("max_output_bytes = 65536: a client that never reads is "
                "closed with 4009 \"too slow\" after everything queued; "
                "errorsSlowConsumer +1", t_slow_consumer, slow, timeout=60)
        await A("SIGTERM: every client gets 1001 'server shutting down', "
                "exit 0", t_sigterm, term, 3, timeout=40)
        await A("shutdown_spread = 2: the 1001s go out oldest first over "
                "about 2 s", t_spread, spread, 40, 2, timeout=40)
    finally:
        await astop_servers(tap, servers, only=None,
                            name="%s server exits 0 on SIGTERM, clean log")


tap.run(main)
