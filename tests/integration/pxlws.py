"""
pxlws - a thin layer over Debian's python3-websockets (10.4, asyncio API)
for the integration tests: connect without keepalive pings or compression,
JSON requests, and replies checked as strict JSON with exact key sets.

A (pxl) system/connected frame that arrives as the very first frame is
remembered in Client.connected and not returned by recv(); the test that
checks it reads Client.first instead.
"""
import asyncio
import time

import websockets

from pxltest import (CLIENT_ID_RE, check, dumps, eq, is_connected_frame,
                     loads)

MISSING = object()


class Client:
    def __init__(self, ws):
        self.ws = ws
        self.first = None       # the first frame received, as received
        self.connected = None   # the system/connected frame, if any
        self._seen_first = False
        self.resume_token = None

    async def send(self, data):
        await self.ws.send(data)

    async def send_json(self, obj):
        await self.ws.send(dumps(obj))

    async def recv_raw(self, timeout=10):
        """The next frame as str (text) or bytes (binary)."""
        while True:
            m = await asyncio.wait_for(self.ws.recv(), timeout)
            if self._seen_first:
                return m
            self._seen_first = True
            self.first = m
            if isinstance(m, str):
                try:
                    obj = loads(m)
                except ValueError:
                    obj = None
                if is_connected_frame(obj):
                    self.connected = obj
                    continue
            return m

    async def recv(self, timeout=10):
        """The next frame, which must be a text frame of strict JSON."""
        m = await self.recv_raw(timeout)
        check(isinstance(m, str), "expected a text frame, got binary %r"
              % m[:200])
        try:
            return loads(m)
        except ValueError as e:
            raise AssertionError("reply is not strict JSON (%s): %r"
                                 % (e, m[:300]))

    async def request(self, type_, action, data=MISSING, rid=MISSING,
                      timeout=10):
        msg = {"type": type_, "action": action}
        if data is not MISSING:
            msg["data"] = data
        if rid is not MISSING:
            msg["requestId"] = rid
        await self.send_json(msg)
        return await self.recv(timeout)

    async def expect(self, expected, raw=None, timeout=10, what="reply"):
        """Send raw (if given) and compare the next frame exactly."""
        if raw is not None:
            await self.send(raw)
        got = await self.recv(timeout)
        eq(got, expected, what + (" to %r" % raw[:200] if raw else ""))
        return got

    async def close(self, code=1000, reason=""):
        await self.ws.close(code, reason)

    # -- helpers for tests of broadcasts, rooms and presence --

    @property
    def cid(self):
        """This client's id from the system/connected frame (or None)."""
        if self.connected is None:
            return None
        return self.connected["data"]["clientId"]

    async def hello(self, timeout=10):
        """Read the first frame, which must be system/connected with a
        32-hex clientId; returns the id."""
        check(not self._seen_first, "hello() after the first frame")
        m = await asyncio.wait_for(self.ws.recv(), timeout)
        self._seen_first = True
        self.first = m
        check(isinstance(m, str), "first frame is binary: %r" % m[:200])
        obj = loads(m)
        check(is_connected_frame(obj) and set(obj) == {"type", "action",
                                                       "data"}
              and isinstance(obj["data"], dict)
              and set(obj["data"]) in ({"clientId"},
                                       {"clientId", "resumeToken"}),
              "first frame is not system/connected: %r" % m[:300])
        cid = obj["data"]["clientId"]
        check(isinstance(cid, str) and CLIENT_ID_RE.match(cid),
              "clientId %r is not 32 lowercase hex characters" % (cid,))
        self.connected = obj
        # With resume (app file) the greeting carries a token too.
        self.resume_token = obj["data"].get("resumeToken")
        return cid

    async def sync(self, timeout=10):
        """A barrier: send test/echo (testkit) with a unique requestId and
        return every frame that arrived before its reply. The server
        handles a client's messages in order on one worker, so anything
        queued for this client before the echo is in the list."""
        global _sync_seq
        _sync_seq += 1
        rid = "sync-%d" % _sync_seq
        await self.send_json({"type": "test", "action": "echo",
                              "data": rid, "requestId": rid})
        before = []
        while True:
            f = await self.recv(timeout)
            if f == {"type": "test", "action": "echo", "response": rid,
                     "requestId": rid}:
                return before
            before.append(f)
            check(len(before) < 10000, "no sync reply among 10000 frames")

    async def expect_nothing(self, what="frames"):
        """Nothing was queued for this client (checked with sync())."""
        got = await self.sync()
        eq(got, [], "unexpected %s" % what)

    async def wait_closed(self, timeout=10):
        """Wait for the server to close us: returns (code, reason)."""
        try:
            while True:
                await asyncio.wait_for(self.ws.recv(), timeout)
        except websockets.ConnectionClosed:
            pass
        await asyncio.wait_for(self.ws.wait_closed(), timeout)
        return self.ws.close_code, self.ws.close_reason


async def connect(url, max_size=2 ** 20, timeout=10, **kw):
    ws = await websockets.connect(url, ping_interval=None, compression=None,
                                  max_size=max_size, open_timeout=timeout,
                                  close_timeout=timeout, **kw)
    return Client(ws)


def reply(type_, action, response=MISSING, rid=MISSING):
    r = {"type": type_, "action": action}
    if response is not MISSING:
        r["response"] = response
    if rid is not MISSING:
        r["requestId"] = rid
    return r


_sync_seq = 0


async def connect_id(url, **kw):
    """connect() and read the system/connected frame: (Client, clientId)."""
    c = await connect(url, **kw)
    try:
        cid = await c.hello()
    except BaseException:
        await c.ws.close()
        raise
    return c, cid


async def ask(c, action, data, type_="system"):
    """Send {type_, action, data} with a requestId and return the reply's
    response; the frames that come before it are kept, oldest first, in
    c.seen (for the caller to read: room frames, notifications)."""
    await c.send_json({"type": type_, "action": action, "data": data,
                       "requestId": action})
    while True:
        r = await c.recv()
        if r.get("requestId") == action:
            return r.get("response")
        c.__dict__.setdefault("seen", []).append(r)


async def join_room(c, room):
    """system/joinRoom through ask(); it must succeed."""
    r = await ask(c, "joinRoom", {"roomName": room})
    eq(r["success"], True, "joinRoom %s" % room)


async def close_all(clients):
    """Close clients, ignoring the ones that are already gone."""
    async def one(c):
        try:
            await c.close()
        except Exception:  # noqa: BLE001 - best effort in finally blocks
            pass
    await asyncio.gather(*(one(c) for c in clients if c is not None))


async def poll(fn, timeout=5, what="condition"):
    """Await fn() until it returns a true value (no fixed sleeps), and
    return that. what names the condition in the timeout's message; it
    may be a function, called then (to show the last state seen)."""
    end = time.monotonic() + timeout
    delay = 0.005
    while True:
        v = await fn()
        if v:
            return v
        if time.monotonic() > end:
            raise AssertionError("timed out after %ss waiting for %s"
                                 % (timeout, what() if callable(what)
                                    else what))
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.1)
