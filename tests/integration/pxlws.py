"""
pxlws - a thin layer over Debian's python3-websockets (10.4, asyncio API)
for the integration tests: connect without keepalive pings or compression,
JSON requests, and replies checked as strict JSON with exact key sets.

A (pxl) system/connected frame that arrives as the very first frame is
remembered in Client.connected and not returned by recv(); the test that
checks it reads Client.first instead.
"""
import asyncio

import websockets

from pxltest import check, dumps, eq, is_connected_frame, loads

MISSING = object()


class Client:
    def __init__(self, ws):
        self.ws = ws
        self.first = None       # the first frame received, as received
        self.connected = None   # the system/connected frame, if any
        self._seen_first = False

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
