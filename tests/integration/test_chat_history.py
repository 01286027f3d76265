"""
test_chat_history - the example app as the quick start serves it
(plugins/chat/app.cfg, its migrations, SQLite next to the app file):
chat/say stores every message and replies once it is stored, with its id;
chat/history gives a room's last N messages oldest first, members only;
the table comes from the migration applied at the first start and the
history survives a restart, which applies nothing again. chat/remind
stores a background job that says the reminder to the room after its
delay, and one still waiting when the server stops is said after the
restart.
"""
import asyncio
import os
import re
import shutil
import sys
import time

sys.dont_write_bytecode = True

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from pxltest import TAP, Server, check, env, eq, error_frame  # noqa: E402
from pxlws import close_all, connect_id  # noqa: E402

tap = TAP()
tap.deadline(60)

SRC = env("PXL_SRCDIR")
APP = os.path.join(SRC, "plugins", "chat")


def example_config():
    """The example app file, on a free port and without its log noise."""
    with open(os.path.join(APP, "app.cfg")) as f:
        text = f.read()
    text, n = re.subn(r"port = 8080;", "port = 0;", text)
    eq(n, 1, "the example app file's port lines")
    return text


async def request(c, action, data):
    """A chat request; returns its reply, skipping room notices."""
    await c.send_json({"type": "chat", "action": action, "data": data})
    while True:
        r = await c.recv()
        if r.get("type") == "error" or (r.get("type") == "chat" and
                                         r.get("action") == action):
            return r


async def join(c, room):
    await c.send_json({"type": "system", "action": "joinRoom",
                       "data": {"roomName": room}})
    while True:
        r = await c.recv()
        if r.get("action") == "joinRoom" and "response" in r:
            check(r["response"]["success"] is True, "joinRoom: %r" % r)
            return


async def said(c, room, text):
    """Say text in room: the reply counts deliveries and names the id."""
    r = await request(c, "say", {"roomName": room, "text": text})
    check(set(r) == {"type", "action", "response"}, "say reply: %r" % r)
    check(set(r["response"]) == {"delivered", "id"}
          and isinstance(r["response"]["id"], int),
          "say reply has delivered and the stored id: %r" % r)
    return r["response"]


server = Server(example_config(), name="app")
shutil.copytree(os.path.join(APP, "migrations"),
                os.path.join(server.dir, "migrations"))
shutil.copytree(os.path.join(APP, "web"), os.path.join(server.dir, "web"))


def first_start():
    server.start()
    check("migration applied: 001_chat_messages.sql" in server.log(),
          "the first start applies the example's migration; log:\n"
          + server.log())
    check(os.path.exists(os.path.join(server.dir, "chat.db")),
          "chat.db is created next to the app file")


async def say_and_read():
    a, aid = await connect_id(server.url())
    b, bid = await connect_id(server.url())
    outsider, _ = await connect_id(server.url())
    try:
        await join(a, "lobby")
        await join(b, "lobby")
        ids = []
        for i in range(5):
            r = await said(a, "lobby", "m%d \u00e9\U0001F600 'quoted' $1" % i)
            eq(r["delivered"], 2, "members who got message %d" % i)
            ids.append(r["id"])
        eq(ids, sorted(ids), "ids grow")
        eq(len(set(ids)), 5, "ids are distinct")
        r = await request(b, "history", {"roomName": "lobby"})
        msgs = r["response"]["messages"]
        eq([m["text"] for m in msgs],
           ["m%d \u00e9\U0001F600 'quoted' $1" % i for i in range(5)],
           "history, oldest first")
        eq([m["id"] for m in msgs], ids, "history ids")
        for m in msgs:
            eq(set(m), {"id", "roomName", "clientId", "userId", "text",
                        "sentAt"}, "a history entry's keys")
            eq(m["roomName"], "lobby", "roomName")
            eq(m["clientId"], aid, "who said it")
            eq(m["userId"], None, "an anonymous sender's userId")
            check(isinstance(m["sentAt"], int) and m["sentAt"] > 0,
                  "sentAt is a number: %r" % m)
        r = await request(b, "history", {"roomName": "lobby", "limit": 2})
        eq([m["id"] for m in r["response"]["messages"]], ids[3:],
           "limit 2: the last two")
        eq(await request(outsider, "history", {"roomName": "lobby"}),
           error_frame("join the room first"), "a non-member's history")
        eq(await request(b, "history", {"roomName": "lobby", "limit": 0}),
           error_frame("limit must be an integer from 1 to 200"),
           "limit 0")
        r = await request(b, "history", {"roomName": "empty-room"})
        eq(r["type"], "error", "history of a room not joined")
        await join(b, "quiet")
        r = await request(b, "history", {"roomName": "quiet"})
        eq(r["response"], {"messages": []}, "a room with no messages")
    finally:
        await close_all([a, b, outsider])


async def recv_reminder(c, timeout):
    """The next chat/reminder frame, skipping room notices."""
    end = time.monotonic() + timeout
    while True:
        r = await c.recv(timeout=max(0.1, end - time.monotonic()))
        if r.get("type") == "chat" and r.get("action") == "reminder":
            return r


async def remind():
    a, aid = await connect_id(server.url())
    b, _ = await connect_id(server.url())
    try:
        await join(a, "lobby")
        await join(b, "lobby")
        t0 = time.monotonic()
        r = await request(a, "remind", {"roomName": "lobby", "text": "tea",
                                        "delayMs": 400})
        check(set(r) == {"type", "action", "response"}
              and isinstance(r["response"].get("id"), str),
              "remind replies with the job's id: %r" % r)
        got = await recv_reminder(b, 10)
        waited = time.monotonic() - t0
        eq(got["data"], {"roomName": "lobby", "text": "tea", "from": aid},
           "the reminder frame's data")
        check(waited >= 0.39, "the reminder came after %.3f s, before its "
              "400 ms delay" % waited)
        eq((await recv_reminder(a, 5))["data"]["text"], "tea",
           "the sender, a member, hears it too")
        eq(await request(a, "remind", {"roomName": "lobby", "text": "x",
                                       "delayMs": 0}),
           error_frame("delayMs must be an integer from 1 to 86400000"),
           "delayMs 0")
        # One left waiting across the restart (said in 3 s).
        r = await request(a, "remind", {"roomName": "lobby",
                                        "text": "after restart",
                                        "delayMs": 3000})
        check("id" in r.get("response", {}), "remind: %r" % r)
    finally:
        await close_all([a, b])


def restart_keeps_history():
    server.stop()
    server.start()  # a new log
    check("migration applied" not in server.log(),
          "the second start applies no migration; log:\n" + server.log())

    async def read_back():
        c, _ = await connect_id(server.url())
        try:
            await join(c, "lobby")
            r = await request(c, "history", {"roomName": "lobby"})
            eq(len(r["response"]["messages"]), 5,
               "messages kept across a restart")
            got = await recv_reminder(c, 15)
            eq(got["data"]["text"], "after restart",
               "the reminder left waiting is said after the restart")
        finally:
            await close_all([c])
    asyncio.run(read_back())


tap.case("the example app starts and applies its migration", first_start)
tap.case("chat/say stores, chat/history reads back, members only",
         lambda: asyncio.run(say_and_read()))
tap.case("chat/remind: the room hears it after its delay (a job)",
         lambda: asyncio.run(remind()))
tap.case("history and a waiting reminder survive a restart, which applies "
         "no migration",
         restart_keeps_history)
tap.case("server exits 0 on SIGTERM with a clean log", server.stop)
tap.done()
