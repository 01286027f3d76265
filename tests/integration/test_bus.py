"""
test_bus - subscribers on the in-process bus (one worker, no Redis): the
framework's own events (clientConnected, clientJoinedRoom, clientLeftRoom,
clientDisconnected) and plugins' custom events (pxl_publish) run the
matching subscribers, highest priority first, each once; a failing
subscriber is counted and does not stop the others; a subscriber can relay
an event to every client; framework channel names cannot be published.
"""
import asyncio
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from pxltest import TAP, Server, app_config, check, eq  # noqa: E402
from pxlws import close_all, connect_id  # noqa: E402

tap = TAP()
tap.deadline(60)


async def events(c):
    r = await c.request("test", "events")
    return [(e["channel"], e["priority"]) for e in r["response"]]


async def t_custom_order(url):
    c, _ = await connect_id(url)
    try:
        await events(c)  # forget the connect events
        r = await c.request("test", "publish",
                            {"name": "test.hello", "message": {"n": 1}})
        eq(r["response"], 2, "subscribers that ran for test.hello")
        eq(await events(c), [("test.hello", 5), ("test.hello", 0)],
           "matching subscribers, highest priority first, once each")
        r = await c.request("test", "publish",
                            {"name": "other", "message": None})
        eq(r["response"], 1, "only the '*' subscriber matches 'other'")
        eq(await events(c), [("other", 0)], "events for 'other'")
    finally:
        await close_all([c])


async def t_failure_counted(url):
    c, _ = await connect_id(url)
    try:
        before = (await c.request("test", "metrics"))["response"]
        await events(c)
        r = await c.request("test", "publish",
                            {"name": "test.fail", "message": {}})
        eq(r["response"], 3, "all three matching subscribers ran")
        eq(await events(c), [("test.fail", 7), ("test.fail", 5),
                             ("test.fail", 0)],
           "the failing one first (priority 7), the others still run")
        after = (await c.request("test", "metrics"))["response"]
        eq(after["subscriberFailures"] - before["subscriberFailures"], 1,
           "subscriberFailures")
        check(after["busEvents"] > before["busEvents"], "busEvents grows")
    finally:
        await close_all([c])


async def t_framework_events(url):
    watcher, _ = await connect_id(url)
    try:
        await events(watcher)
        c, cid = await connect_id(url)
        r = await c.request("system", "joinRoom", {"roomName": "r1"})
        check(r["response"]["success"], "joined")
        r = await c.request("system", "leaveRoom", {"roomName": "r1"})
        await c.close()
        got = []
        for _ in range(100):  # the disconnect event follows the close
            got += await events(watcher)
            if ("clientDisconnected", 5) in got:
                break
            await asyncio.sleep(0.05)
        want = [("clientConnected", 5), ("clientConnected", 0),
                ("clientJoinedRoom", 5), ("clientJoinedRoom", 0),
                ("clientLeftRoom", 5), ("clientLeftRoom", 0),
                ("clientDisconnected", 5), ("clientDisconnected", 0)]
        eq(got, want, "framework events, in order, each subscriber once")
    finally:
        await close_all([watcher])


async def t_relay_to_clients(url):
    a, _ = await connect_id(url)
    b, _ = await connect_id(url)
    try:
        await a.send_json({"type": "test", "action": "publish",
                           "data": {"name": "status",
                                    "message": {"state": "degraded"}}})
        # a gets the relayed frame before its reply; b gets the frame.
        first = await a.recv()
        eq(first, {"type": "system", "action": "status",
                   "data": {"state": "degraded"}}, "relayed frame to a")
        eq((await a.recv())["response"], 2, "status + '*' subscribers ran")
        eq(await b.recv(), first, "relayed frame to b")
    finally:
        await close_all([a, b])


async def t_reserved_names(url):
    c, _ = await connect_id(url)
    try:
        for name in ("clientConnected", "clientDisconnected",
                     "clientJoinedRoom", "clientLeftRoom", ""):
            r = await c.request("test", "publish",
                                {"name": name, "message": {}})
            eq(r["type"], "error", "publishing %r is refused" % name)
    finally:
        await close_all([c])


async def main():
    srv = Server(app_config(plugins=("system", "testkit")), "bus")
    if not tap.case("server starts", srv.start):
        return
    try:
        url = srv.url()
        await tap.acase("custom event: matching subscribers by priority",
                        t_custom_order, url)
        await tap.acase("a failing subscriber is counted, others run",
                        t_failure_counted, url)
        await tap.acase("connect, join, leave, disconnect events",
                        t_framework_events, url)
        await tap.acase("a subscriber relays an event to every client",
                        t_relay_to_clients, url)
        await tap.acase("framework channel names cannot be published",
                        t_reserved_names, url)
    finally:
        srv.stop_case(tap)


tap.run(main)
