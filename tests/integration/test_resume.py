"""
test_resume - sessions and system/resume in one process (PROTOCOL.md
"History and resume (pxl)", resume): with resume on, system/connected
carries data.resumeToken; a member whose connection ends leaves its rooms
(members get clientLeft) and its session is kept; a new connection that
sends system/resume {token, rooms} gets back its clientId, metadata and
rooms (members get clientJoined), exactly the frames it missed in order,
then the reply with recovered:true, then newer frames. History that no
longer reaches back gives recovered:false with the rooms restored. An
expired session, a reused, forged, malformed or another user's token get
the exact failure replies, and the connection keeps working as the new
client it was. resume with redis is refused by -t.
"""
import asyncio
import os
import sys

sys.dont_write_bytecode = True

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from pxltest import (TAP, Server, app_config, check, check_text,  # noqa: E402
                     eq, jwt_hs)
from pxlws import ask, connect_id, join_room  # noqa: E402

tap = TAP()
tap.deadline(90)

SIZE = 30
SECRET = "resume-test-jwt-secret-0123456789"
EXPIRED = {"success": False, "error": "Session expired"}
INVALID = {"success": False, "error": "Invalid resume token"}


async def until_reply(c, action, data, type_="system"):
    """(frames before the reply, the reply's response)."""
    c.__dict__["seen"] = []
    r = await ask(c, action, data, type_)
    return c.__dict__.pop("seen"), r


async def send(c, room, n, tag):
    for i in range(n):
        m = {"type": "chat", "action": "message", "data": {"tag": tag, "i": i}}
        r = await ask(c, "sendRoom", {"room": room, "message": m},
                          type_="test")
        check(isinstance(r, int), "sendRoom: %r" % (r,))


def chats(frames):
    return [f for f in frames if f.get("type") == "chat"]


async def next_of(c, pred):
    """The next frame (kept ones first) that pred accepts."""
    seen = c.__dict__.setdefault("seen", [])
    while True:
        f = seen.pop(0) if seen else await c.recv()
        if pred(f):
            return f


def notice(action, cid, room):
    return lambda f: (f.get("type") == "system" and f.get("action") == action
                      and f.get("data", {}).get("clientId") == cid
                      and f["data"].get("roomName") == room)


async def works_as(c, cid):
    """The connection still serves requests, as client cid, not resumed."""
    who = await ask(c, "whoami", {}, type_="test")
    eq(who["clientId"], cid, "the connection keeps its own clientId")
    eq(await ask(c, "resumed", {}, type_="test"), False, "not resumed")
    eq(await ask(c, "listRooms", {}), {"rooms": []}, "in no room")


async def t_resume(srv):
    url = srv.url()
    a, aid = await connect_id(url)
    token = a.resume_token
    check(isinstance(token, str) and len(token) > 20,
          "system/connected carries a resumeToken: %r" % (a.connected,))
    b, _ = await connect_id(url)
    await join_room(a, "r1")
    await join_room(a, "r2")
    await join_room(b, "r1")
    await ask(a, "setMeta", {"key": "nick", "value": "alice"},
                  type_="test")
    await send(b, "r1", 3, "before")
    got = chats([await next_of(a, lambda f: f.get("type") == "chat")
                 for _ in range(3)])
    last = got[-1]["pos"]
    epoch, off = last.split(":")
    await a.close()
    await next_of(b, notice("clientLeft", aid, "r1"))
    await send(b, "r1", 20, "missed")

    c, cid = await connect_id(url)
    check(cid != aid, "a new connection starts as a new client")
    frames, r = await until_reply(c, "resume",
                                  {"token": token, "rooms": {"r1": last}})
    eq(set(r), {"success", "clientId", "resumeToken", "rooms"},
       "reply keys: %r" % (r,))
    eq((r["success"], r["clientId"], r["rooms"]),
       (True, aid, {"r1": {"recovered": True}}), "resumed as the old client")
    check(r["resumeToken"] not in (token, c.resume_token),
          "a new token for the resumed session")
    missed = chats(frames)
    eq(len(missed), 20, "exactly the 20 missed frames before the reply")
    eq([f["pos"] for f in missed],
       ["%s:%d" % (epoch, int(off) + i) for i in range(1, 21)],
       "in order, no gap, no duplicate")
    eq([f["data"] for f in missed],
       [{"tag": "missed", "i": i} for i in range(20)], "the frames sent")
    eq(len(frames), 20, "nothing else before the reply: %r"
       % [f for f in frames if f.get("type") != "chat"])
    await next_of(b, notice("clientJoined", aid, "r1"))
    rooms = await ask(c, "listRooms", {})
    eq(sorted(rooms["rooms"]), ["r1", "r2"], "rooms restored")
    who = await ask(c, "whoami", {"metaKey": "nick"}, type_="test")
    eq((who["clientId"], who["meta"]), (aid, "alice"),
       "clientId and metadata restored")
    eq(await ask(c, "resumed", {}, type_="test"), True,
       "pxl_client_resumed()")
    await send(b, "r1", 1, "after")
    f = await next_of(c, lambda f: f.get("type") == "chat")
    eq((f["pos"], f["data"]), ("%s:%d" % (epoch, int(off) + 21),
                               {"tag": "after", "i": 0}), "then newer frames")
    # The token worked once; the resumed one is a fresh one.
    d, did = await connect_id(url)
    eq(await ask(d, "resume", {"token": token}), EXPIRED, "reused token")
    await works_as(d, did)
    # A session still connected cannot be taken.
    e, eid = await connect_id(url)
    eq(await ask(e, "resume", {"token": r["resumeToken"]}), INVALID,
       "the token of a connected session")
    await works_as(e, eid)
    # Forged: the same session named, another signature; malformed.
    forged = token[:-2] + ("AA" if token[-2:] != "AA" else "BB")
    eq(await ask(e, "resume", {"token": forged}), INVALID, "forged")
    eq(await ask(e, "resume", {"token": "abc"}), INVALID, "malformed")
    eq(await ask(e, "resume", {}), INVALID, "no token")
    await works_as(e, eid)
    for x in (b, c, d, e):
        await x.close()


async def t_not_recovered(srv):
    url = srv.url()
    a, aid = await connect_id(url)
    token = a.resume_token
    b, _ = await connect_id(url)
    await join_room(a, "big")
    await join_room(b, "big")
    await send(b, "big", 1, "seen")
    last = (await next_of(a, lambda f: f.get("type") == "chat"))["pos"]
    await a.close()
    await next_of(b, notice("clientLeft", aid, "big"))
    await send(b, "big", SIZE + 5, "lost")
    c, _ = await connect_id(url)
    frames, r = await until_reply(
        c, "resume", {"token": token, "rooms": {"big": last,
                                                "nowhere": last}})
    eq((r["success"], r["clientId"], r["rooms"]),
       (True, aid, {"big": {"recovered": False},
                    "nowhere": {"recovered": False}}),
       "history no longer reaches back: recovered false")
    eq(chats(frames), [], "nothing replayed")
    eq(await ask(c, "listRooms", {}), {"rooms": ["big"]},
       "the room is restored")
    await next_of(b, notice("clientJoined", aid, "big"))
    # Another epoch is not recovered either.
    await c.close()
    await next_of(b, notice("clientLeft", aid, "big"))
    d, _ = await connect_id(url)
    r = await ask(d, "resume", {"token": r["resumeToken"],
                                    "rooms": {"big": "otherepo:1"}})
    eq((r["success"], r["clientId"], r["rooms"]),
       (True, aid, {"big": {"recovered": False}}), "another epoch")
    await b.close()
    await d.close()


async def t_expired(srv):
    url = srv.url()
    a, _ = await connect_id(url)
    token = a.resume_token
    await a.close()
    await asyncio.sleep(2.5)  # resume.ttl = 1
    c, cid = await connect_id(url)
    eq(await ask(c, "resume", {"token": token}), EXPIRED,
       "a session older than ttl")
    await works_as(c, cid)
    await c.close()


async def t_users(srv):
    url = srv.url()

    def as_user(sub):
        return url + "?token=" + jwt_hs({"sub": sub}, SECRET)

    u1, u1id = await connect_id(as_user("u1"))
    token = u1.resume_token
    await join_room(u1, "team")
    await u1.close()
    u2, u2id = await connect_id(as_user("u2"))
    eq(await ask(u2, "resume", {"token": token}), INVALID,
       "another user's token")
    await works_as(u2, u2id)
    anon, anonid = await connect_id(url)
    eq(await ask(anon, "resume", {"token": token}), INVALID,
       "a user's token on an anonymous connection")
    await works_as(anon, anonid)
    # Refusals did not use it up: its user still resumes.
    again, _ = await connect_id(as_user("u1"))
    r = await ask(again, "resume", {"token": token, "rooms": {}})
    eq((r["success"], r["clientId"], r["rooms"]), (True, u1id, {}),
       "the same user resumes")
    eq(await ask(again, "listRooms", {}), {"rooms": ["team"]}, "rooms")
    # An anonymous session is not a user's.
    anon_token = anon.resume_token
    await anon.close()
    u3, u3id = await connect_id(as_user("u3"))
    eq(await ask(u3, "resume", {"token": anon_token}), INVALID,
       "an anonymous session on a user's connection")
    await works_as(u3, u3id)
    for x in (u2, again, u3):
        await x.close()


async def t_off(srv):
    a, aid = await connect_id(srv.url())
    eq(a.resume_token, None, "no resumeToken without resume")
    r = await ask(a, "resume", {"token": "x" * 64})
    eq((r["success"], r["error"]), (False, "Session resume is off"),
       "system/resume without resume")
    await a.close()


def t_redis_refused():
    rc, out, err, path = check_text(
        'name = "x";\nresume = { ttl = 30; };\n'
        'redis = { port = 6390; };\n')
    eq((rc, err), (1, "%s:2: resume: not available with redis yet: "
                      "sessions live in one process (no redis group, one "
                      "worker)\n" % path), "-t with resume and redis")


def main():
    plugins = ("system", "testkit")
    common = ("rooms = { notify_members = true; history = { size = %d; "
              "ttl = 60; }; };\n" % SIZE)
    on = Server(app_config(plugins, extra=common +
                           'resume = { ttl = 60; secret = '
                           '"0123456789abcdef0123"; };'), "resume")
    short = Server(app_config(plugins, extra=common +
                              "resume = { ttl = 1; };"), "short")
    users = Server(app_config(plugins, extra=common +
                              'resume = { ttl = 60; };\n'
                              'auth = { jwt = { secret = "%s"; }; };'
                              % SECRET), "users")
    off = Server(app_config(plugins), "off")
    servers = (on, short, users, off)
    try:
        for s in servers:
            s.start()
        tap.case("a member misses 20 messages and resumes: they come in "
                 "order, then recovered:true, then newer ones; members see "
                 "it leave and come back; reused, live, forged, malformed "
                 "tokens refused", lambda: asyncio.run(t_resume(on)))
        tap.case("more than size missed, an unknown room, another epoch: "
                 "recovered false, rooms restored",
                 lambda: asyncio.run(t_not_recovered(on)))
        tap.case("a session older than resume.ttl: Session expired",
                 lambda: asyncio.run(t_expired(short)))
        tap.case("a token resumes only the same JWT user (or anonymous on "
                 "anonymous)", lambda: asyncio.run(t_users(users)))
        tap.case("without resume: no token, system/resume says it is off",
                 lambda: asyncio.run(t_off(off)))
        tap.case("resume with redis: -t names file:line", t_redis_refused)
    finally:
        for s in servers:
            s.stop_case(tap, "%s server exits 0, clean log" % s.name)


tap.run(main)
