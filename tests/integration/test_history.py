"""
test_history - room history in one process (PROTOCOL.md "History and
resume (pxl)", rooms.history): every frame sent to a room carries
"pos":"EPOCH:OFFSET", offsets count the room's messages from 1 within
one epoch; system/history gives members the kept messages (the frames
they got, oldest first), after `since`, at most `limit` (default and
cap: size); only the last `size` are kept, and none older than `ttl`;
a non-member gets "Not a member"; a room that emptied and expired starts
a new epoch. Without rooms.history frames carry no pos and
system/history says so. rooms.history with redis is refused by -t.
"""
import asyncio
import os
import sys

sys.dont_write_bytecode = True

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from pxltest import (TAP, Server, app_config, check, check_text,  # noqa: E402
                     eq)
from pxlws import ask, connect_id, join_room  # noqa: E402

tap = TAP()
tap.deadline(60)

SIZE = 5


async def send(c, room, n):
    """Send n messages to room through testkit; return what was sent."""
    sent = []
    for i in range(n):
        m = {"type": "chat", "action": "message", "data": {"i": i}}
        eq(await ask(c, "sendRoom", {"room": room, "message": m},
                         type_="test"), 1, "members reached")
        sent.append(m)
    return sent


async def room_frames(c, n):
    """The next n frames of type chat that c gets."""
    out = []
    seen = c.__dict__.setdefault("seen", [])
    while len(out) < n:
        f = seen.pop(0) if seen else await c.recv()
        if f.get("type") == "chat":
            out.append(f)
    return out


async def t_history(srv):
    url = srv.url()
    a, _ = await connect_id(url)
    b, _ = await connect_id(url)
    await join_room(a, "lobby")
    sent = await send(b, "lobby", 8)  # b is no member: reached 1 (a)
    got = await room_frames(a, 8)
    epochs = {f["pos"].split(":")[0] for f in got}
    eq(len(epochs), 1, "one epoch")
    epoch = epochs.pop()
    eq([f["pos"] for f in got], ["%s:%d" % (epoch, i) for i in range(1, 9)],
       "positions count from 1")
    eq([{k: v for k, v in f.items() if k != "pos"} for f in got], sent,
       "frames are what was sent, plus pos")
    h = await ask(a, "history", {"roomName": "lobby"})
    eq(h, {"roomName": "lobby", "epoch": epoch, "messages": got[-SIZE:]},
       "history keeps the last %d, the frames members got" % SIZE)
    h = await ask(a, "history", {"roomName": "lobby",
                                     "since": got[5]["pos"]})
    eq(h["messages"], got[6:], "history since the 6th")
    h = await ask(a, "history", {"roomName": "lobby", "limit": 2})
    eq(h["messages"], got[3:5], "history limit 2: the oldest two kept")
    h = await ask(a, "history", {"roomName": "lobby",
                                     "since": "otherepo:3"})
    eq(h["messages"], got[-SIZE:], "since of another epoch: all kept")
    r = await ask(b, "history", {"roomName": "lobby"})
    eq((r["success"], r["error"]), (False, "Not a member"), "non-member")
    r = await ask(a, "history", {"roomName": "lobby", "limit": 0})
    eq(r["success"], False, "limit 0 refused")
    r = await ask(a, "history", {"roomName": "lobby", "since": 5})
    eq(r["success"], False, "since not a string refused")
    await a.close()
    await b.close()


async def t_ttl_and_epoch(srv):
    url = srv.url()
    a, _ = await connect_id(url)
    await join_room(a, "brief")
    await send(a, "brief", 2)
    first = await room_frames(a, 2)
    # ttl = 2 s: after it, nothing is kept (polled, no fixed sleep).
    for _ in range(60):
        h = await ask(a, "history", {"roomName": "brief"})
        if not h["messages"]:
            break
        await asyncio.sleep(0.1)
    eq(h["messages"], [], "messages older than ttl")
    eq(h["epoch"], first[0]["pos"].split(":")[0], "the epoch of a room "
       "that still has members stays")
    await send(a, "brief", 1)
    f = (await room_frames(a, 1))[0]
    eq(f["pos"], "%s:3" % h["epoch"], "offsets go on in the same epoch")
    # The room empties; once its messages expire its history goes.
    await a.close()
    c, _ = await connect_id(url)
    await join_room(c, "brief")
    for _ in range(80):
        h = await ask(c, "history", {"roomName": "brief"})
        if h["epoch"] != first[0]["pos"].split(":")[0]:
            break
        await c.send_json({"type": "system", "action": "leaveRoom",
                           "data": {"roomName": "brief"}})
        await asyncio.sleep(0.1)
        await join_room(c, "brief")
    check(h["epoch"] != first[0]["pos"].split(":")[0],
          "a room that emptied and expired starts a new epoch")
    await c.close()


async def t_off(srv):
    a, _ = await connect_id(srv.url())
    await join_room(a, "plain")
    await send(a, "plain", 1)
    f = (await room_frames(a, 1))[0]
    check("pos" not in f, "a frame without rooms.history has no pos")
    r = await ask(a, "history", {"roomName": "plain"})
    eq((r["success"], r["error"]), (False, "Room history is off"),
       "system/history without rooms.history")
    await a.close()


def t_redis_refused():
    rc, out, err, path = check_text(
        'name = "x";\nrooms = { history = { size = 10; }; };\n'
        'redis = { port = 6390; };\n')
    eq((rc, err), (1, "%s:2: rooms.history: not available with redis yet: "
                      "room history lives in one process (no redis group, "
                      "one worker)\n" % path), "-t with history and redis")


def main():
    plugins = ("system", "testkit")
    hist = Server(app_config(plugins, extra="rooms = { history = { size = "
                             "%d; ttl = 2; }; };" % SIZE), "hist")
    off = Server(app_config(plugins), "off")
    servers = (hist, off)
    try:
        for s in servers:
            s.start()
        tap.case("pos on room frames; system/history: last size kept, since, "
                 "limit, another epoch, non-member, bad arguments",
                 lambda: asyncio.run(t_history(hist)))
        tap.case("ttl: old messages go, offsets go on; an emptied, expired "
                 "room starts a new epoch",
                 lambda: asyncio.run(t_ttl_and_epoch(hist)))
        tap.case("without rooms.history: no pos, system/history says it is "
                 "off", lambda: asyncio.run(t_off(off)))
        tap.case("rooms.history with redis: -t names file:line",
                 t_redis_refused)
    finally:
        for s in servers:
            s.stop_case(tap, "%s server exits 0, clean log" % s.name)


tap.run(main)
