"""
test_redis - several pxl-serve processes (and the workers of one master)
made one app through a real redis-server the test starts itself
(pxlredis.py): sends of every kind reach each target once wherever it is
connected, rooms and presence are cluster-wide, other workers' clients can
be joined, changed and closed, custom events run on every worker; dead
workers (SIGTERM, kill -9, restarted by the master) leave the others'
view in time; a Redis outage keeps local service, drops (and counts) what
was meant for other workers, then heals without a restart; redis.required,
password, ACL user, database and unix socket.

Every wait is a poll with a timeout. A cluster-wide barrier (settle): one
client per process in turn sends a marker to everybody and every client
reads up to it; Redis keeps the order of what it dispatches, so whatever
any process published before is in by then.
"""
import asyncio
import itertools
import os
import re
import signal
import socket
import sys
import threading
import time
from types import SimpleNamespace as Group

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from pxltest import (TAP, Server, app_config, astop_servers,  # noqa: E402
                     check, eq, jwt_hs, load_slack, run_serve, tmpdir,
                     unused_port, wait_until)
from pxlws import close_all, connect_id, poll  # noqa: E402
from pxlredis import RedisServer  # noqa: E402

tap = TAP()
tap.deadline(60)

SECRET = "redis-test-secret"
PLUGINS = ("system", "testkit")
_rid = itertools.count(1)


# ---- clients ----------------------------------------------------------------

class Peer:
    """A connected client: requests matched by requestId; every other frame
    lands in inbox (in arrival order)."""

    def __init__(self, c, cid, name):
        self.c = c
        self.id = cid
        self.name = name
        self.inbox = []

    async def req(self, action, data=None, type_="test", timeout=10):
        rid = "r%d" % next(_rid)
        msg = {"type": type_, "action": action, "requestId": rid}
        if data is not None:
            msg["data"] = data
        await self.c.send_json(msg)
        end = time.monotonic() + timeout
        while True:
            f = await self.c.recv(max(0.1, end - time.monotonic()))
            if isinstance(f, dict) and f.get("requestId") == rid:
                check(f.get("type") == type_ and f.get("action") == action,
                      "%s: reply to %s/%s is %r" % (self.name, type_, action,
                                                    f))
                return f
            self.inbox.append(f)

    async def resp(self, action, data=None, type_="test"):
        """The reply's response (an error reply fails)."""
        r = await self.req(action, data, type_)
        check("response" in r, "%s: %s/%s %r got %r"
              % (self.name, type_, action, data, r))
        return r["response"]

    async def until(self, frame, timeout=10):
        """Read until frame arrives (it may already be in inbox); it is
        taken out, the others stay."""
        for i, f in enumerate(self.inbox):
            if f == frame:
                del self.inbox[i]
                return
        end = time.monotonic() + timeout
        while True:
            left = end - time.monotonic()
            try:
                f = await self.c.recv(max(0.05, left))
            except asyncio.TimeoutError:
                raise AssertionError("%s: %r did not arrive within %ss; got "
                                     "meanwhile %r" % (self.name, frame,
                                                       timeout,
                                                       self.inbox[-10:]))
            if f == frame:
                return
            self.inbox.append(f)

    def take(self):
        """Frames received so far (markers left out); inbox is emptied."""
        out = [f for f in self.inbox
               if not (isinstance(f, dict) and f.get("type") == "mark")]
        self.inbox = []
        return out

    async def close(self):
        await close_all([self.c])


def token(sub):
    return jwt_hs({"sub": sub}, SECRET)


async def peer(srv, name, sub=None):
    """Connect (with a token whose sub is sub), read system/connected and
    (with a token) auth/authenticated."""
    url = srv.url() + ("?token=" + token(sub) if sub is not None else "")
    c, cid = await connect_id(url)
    p = Peer(c, cid, name)
    if sub is not None:
        f = await c.recv()
        check(f.get("type") == "auth" and f.get("action") == "authenticated",
              "%s: expected auth/authenticated, got %r" % (name, f))
    return p


def msg(tag, n=0):
    return {"type": "m", "action": tag, "data": n}


def count(frames, frame):
    return sum(1 for f in frames if f == frame)


async def settle(peers, senders):
    """Cluster-wide barrier: each sender (one per process) in turn sends a
    marker to everybody; every peer reads up to each marker."""
    for s in senders:
        mark = {"type": "mark", "action": "settle", "data": next(_rid)}
        await s.resp("sendAll", {"message": mark})
        for p in peers:
            await p.until(mark)


async def received(peers, senders):
    """settle(), then {peer name: frames received}."""
    await settle(peers, senders)
    return {p.name: p.take() for p in peers}


def exactly_once(got, frame, targets, everyone, what):
    """frame came once to each of targets, never to the others."""
    want = {p.name: (1 if p in targets else 0) for p in everyone}
    have = {p.name: count(got[p.name], frame) for p in everyone}
    eq(have, want, "%s: copies of %r per client" % (what, frame))


async def metrics(p):
    return await p.resp("metrics")


async def sees(p, cid):
    """p's process knows client cid (a remote one, or local)."""
    info = await p.resp("clientInfo", {"clientId": cid})
    return info["found"]


async def until_seen(p, cids, what, timeout=10):
    async def all_seen():
        for cid in cids:
            if not await sees(p, cid):
                return False
        return True
    await poll(all_seen, timeout, what)


async def members(p, room):
    r = await p.resp("roomMembers", {"roomName": room}, "system")
    check(isinstance(r, dict) and isinstance(r.get("members"), list),
          "roomMembers reply %r" % (r,))
    return sorted(((m["clientId"], m["userId"]) for m in r["members"]),
                  key=repr)


async def until_members(askers, room, want, timeout=10):
    """Poll roomMembers on each asker's process until it is want."""
    want = sorted(want, key=repr)
    for a in askers:
        async def same(a=a):
            return (await members(a, room)) == want
        try:
            await poll(same, timeout, "")
        except AssertionError:
            raise AssertionError("roomMembers of %s asked by %s:\n  got:      "
                                 "%r\n  expected: %r (after %ss)"
                                 % (room, a.name, await members(a, room),
                                    want, timeout))


async def join(p, room):
    r = await p.resp("joinRoom", {"roomName": room}, "system")
    check(isinstance(r, dict) and r.get("success") is True,
          "%s: joinRoom %s: %r" % (p.name, room, r))


async def leave(p, room):
    r = await p.resp("leaveRoom", {"roomName": room}, "system")
    check(isinstance(r, dict) and r.get("success") is True,
          "%s: leaveRoom %s: %r" % (p.name, room, r))


def note(kind, room, p, uid):
    return {"type": "system", "action": kind,
            "data": {"roomName": room, "clientId": p.id, "userId": uid}}


def numsub(redis, app_name, channel):
    """Subscribers of an app's channel, from Redis."""
    r = redis.command("PUBSUB", "NUMSUB", "pxl:%s:%s" % (app_name, channel))
    return r[1]


async def until_numsub(redis, app_name, channel, n, timeout=10):
    async def right():
        return numsub(redis, app_name, channel) == n
    try:
        await poll(right, timeout, "")
    except AssertionError:
        raise AssertionError("Redis counts %d subscribers of %s, expected %d "
                             "(after %ss)" % (numsub(redis, app_name,
                                                     channel),
                                              channel, n, timeout))


def log_count(srv, pattern):
    return len(re.findall(pattern, srv.log()))


async def wait_log(srv, pattern, n=1, timeout=10):
    await asyncio.to_thread(wait_until,
                            lambda: log_count(srv, pattern) >= n, timeout,
                            "%d line(s) matching %r in %s's log"
                            % (n, pattern, os.path.basename(srv.cfg)))


def app(name, redis_text, notify=True, jwt=False, workers=None):
    extra = [redis_text]
    if notify:
        extra.append("rooms = { notify_members = true; };")
    if jwt:
        extra.append('auth = { jwt = { secret = "%s"; }; };' % SECRET)
    if workers is not None:
        extra.append("workers = %d;" % workers)
    return app_config(PLUGINS, name=name, extra="\n".join(extra))


def connected_re(where):
    return r"redis %s: connected" % re.escape(where)


# ---- (a) two single-worker instances ----------------------------------------

async def a_setup(g):
    g.a1 = await peer(g.A, "a1", "42")
    g.a2 = await peer(g.A, "a2")
    g.b1 = await peer(g.B, "b1", "42")
    g.b2 = await peer(g.B, "b2", "abc")
    g.b3 = await peer(g.B, "b3")
    g.all = [g.a1, g.a2, g.b1, g.b2, g.b3]
    g.senders = [g.a1, g.b1]


async def t_a_view(g):
    """Both processes count all 5 clients; each sees the other's clients
    with their token's userId, as not local."""
    for p, n in ((g.a1, 2), (g.b1, 3)):
        async def five(p=p):
            return (await metrics(p))["clients"] == 5
        await poll(five, 10, "%s's process to count 5 clients" % p.name)
        eq((await metrics(p))["connections"], n,
           "local connections of %s's process" % p.name)
    for asker, other, uid, local in ((g.a1, g.b2, "abc", False),
                                     (g.a1, g.b1, 42, False),
                                     (g.b3, g.a1, 42, False),
                                     (g.b3, g.a2, None, False),
                                     (g.a1, g.a2, None, True)):
        info = await asker.resp("clientInfo", {"clientId": other.id})
        eq(info, {"found": True, "local": local, "userId": uid, "rooms": []},
           "clientInfo of %s asked on %s's process" % (other.name,
                                                        asker.name))


async def t_a_send_all(g):
    ma, mb = await metrics(g.a1), await metrics(g.b1)
    m = msg("all-1")
    eq(await g.a1.resp("sendAll", {"message": m}), 5, "sendAll response")
    got = await received(g.all, g.senders)
    exactly_once(got, m, g.all, g.all, "sendAll from a1")
    ma2, mb2 = await metrics(g.a1), await metrics(g.b1)
    check(ma2["redisPublished"] > ma["redisPublished"] and
          mb2["redisReceived"] > mb["redisReceived"] and
          ma2["redisDropped"] == ma["redisDropped"] == 0 and
          mb2["redisDropped"] == 0,
          "redis counters: A published %d -> %d, B received %d -> %d, "
          "dropped %d/%d" % (ma["redisPublished"], ma2["redisPublished"],
                             mb["redisReceived"], mb2["redisReceived"],
                             ma2["redisDropped"], mb2["redisDropped"]))
    # exclude a client of the other process
    m = msg("all-2")
    eq(await g.b3.resp("sendAll", {"message": m, "exclude": g.a2.id}), 4,
       "sendAll response with exclude")
    got = await received(g.all, g.senders)
    exactly_once(got, m, [g.a1, g.b1, g.b2, g.b3], g.all,
                 "sendAll from b3 excluding a2")


async def t_a_send_all_meta(g):
    for p in (g.a2, g.b3):
        await p.req("setMeta", {"key": "vip", "value": True})

    async def known():
        i = await g.a1.resp("clientInfo", {"clientId": g.b3.id,
                                           "metaKey": "vip"})
        j = await g.b1.resp("clientInfo", {"clientId": g.a2.id,
                                           "metaKey": "vip"})
        return i.get("meta") is True and j.get("meta") is True
    await poll(known, 10, "the vip metadata to reach both processes")
    for sender in (g.a1, g.b2):
        m = msg("vip-" + sender.name)
        eq(await sender.resp("sendAll", {"message": m, "onlyMeta": "vip"}),
           2, "sendAll onlyMeta response from " + sender.name)
        got = await received(g.all, g.senders)
        exactly_once(got, m, [g.a2, g.b3], g.all,
                     "sendAll onlyMeta vip from " + sender.name)


async def t_a_rooms(g):
    """Members on both processes: clientJoined/clientLeft cross over,
    roomMembers agrees on both, sendRoom reaches each member once."""
    room = "ra"
    uids = {"a1": 42, "b1": 42, "b2": "abc"}
    inside = []
    for p in (g.a1, g.b1, g.b2):
        # One join at a time, seen on both, so the notes are exact.
        await join(p, room)
        inside.append((p.id, uids[p.name]))
        await until_members([g.a2, g.b3], room, inside)
    got = await received(g.all, g.senders)
    joined = {p.name: [f for f in got[p.name]
                       if f.get("action") in ("clientJoined", "clientLeft")]
              for p in g.all}
    eq(joined, {"a1": [note("clientJoined", room, g.b1, 42),
                       note("clientJoined", room, g.b2, "abc")],
                "a2": [], "b1": [note("clientJoined", room, g.b2, "abc")],
                "b2": [], "b3": []},
       "clientJoined frames per client")
    want = sorted([(g.a1.id, 42), (g.b1.id, 42), (g.b2.id, "abc")], key=repr)
    eq(await members(g.a2, room), want, "roomMembers asked on A")
    eq(await members(g.b3, room), want, "roomMembers asked on B")
    m = msg("room-1")
    eq(await g.a2.resp("sendRoom", {"room": room, "message": m}), 3,
       "sendRoom response (non-member sender on A)")
    got = await received(g.all, g.senders)
    exactly_once(got, m, [g.a1, g.b1, g.b2], g.all, "sendRoom from a2")
    m = msg("room-2")
    eq(await g.b2.resp("sendRoom", {"room": room, "message": m,
                                    "exclude": g.b1.id}), 2,
       "sendRoom response excluding b1")
    got = await received(g.all, g.senders)
    exactly_once(got, m, [g.a1, g.b2], g.all, "sendRoom from b2, b1 excluded")
    await leave(g.b2, room)
    got = await received(g.all, g.senders)
    left = {p.name: [f for f in got[p.name]
                     if f.get("action") in ("clientJoined", "clientLeft")]
            for p in g.all}
    eq(left, {"a1": [note("clientLeft", room, g.b2, "abc")], "a2": [],
              "b1": [note("clientLeft", room, g.b2, "abc")], "b2": [],
              "b3": []}, "clientLeft frames per client")
    want = sorted([(g.a1.id, 42), (g.b1.id, 42)], key=repr)
    eq(await members(g.a2, room), want, "roomMembers on A after b2 left")
    eq(await members(g.b3, room), want, "roomMembers on B after b2 left")


async def t_a_room_exclude_remote(g):
    """sendRoom with exclude naming a member connected to the OTHER
    instance: that member gets nothing, every other member exactly once
    (the exclusion travels with the message), both ways."""
    room = "rex"
    inside = []
    for p, uid in ((g.a1, 42), (g.b1, 42), (g.b2, "abc")):
        await join(p, room)
        inside.append((p.id, uid))
    await until_members([g.a2, g.b3], room, inside)
    try:
        m = msg("rex-1")
        eq(await g.a2.resp("sendRoom", {"room": room, "message": m,
                                        "exclude": g.b1.id}), 2,
           "sendRoom response from a2 (on A) excluding b1 (on B)")
        got = await received(g.all, g.senders)
        exactly_once(got, m, [g.a1, g.b2], g.all,
                     "sendRoom from a2 on A, b1 on B excluded")
        m = msg("rex-2")
        eq(await g.b3.resp("sendRoom", {"room": room, "message": m,
                                        "exclude": g.a1.id}), 2,
           "sendRoom response from b3 (on B) excluding a1 (on A)")
        got = await received(g.all, g.senders)
        exactly_once(got, m, [g.b1, g.b2], g.all,
                     "sendRoom from b3 on B, a1 on A excluded")
    finally:
        # Leave no trace for the next cases, also after a failure.
        for p in (g.a1, g.b1, g.b2):
            await leave(p, room)
        await until_members([g.a2, g.b3], room, [])
        await received(g.all, g.senders)  # the clientLeft notes


async def t_a_send_to(g):
    m = msg("to-b3")
    eq(await g.a2.resp("sendTo", {"clientId": g.b3.id, "message": m}), 1,
       "sendTo response")
    m2 = msg("to-a2")
    eq(await g.b3.resp("sendTo", {"clientId": g.a2.id, "message": m2}), 1,
       "sendTo response (other way)")
    got = await received(g.all, g.senders)
    exactly_once(got, m, [g.b3], g.all, "sendTo b3 from a2")
    exactly_once(got, m2, [g.a2], g.all, "sendTo a2 from b3")


async def t_a_send_users(g):
    m = msg("users")
    eq(await g.a2.resp("sendUsers", {"userIds": [42, "abc", 42],
                                     "message": m}), 3,
       "sendUsers [42, abc, 42] response")
    got = await received(g.all, g.senders)
    exactly_once(got, m, [g.a1, g.b1, g.b2], g.all, "sendUsers from a2")
    m = msg("users-2")
    eq(await g.b3.resp("sendUsers", {"userIds": [42], "message": m}), 2,
       "sendUsers [42] response from b3")
    got = await received(g.all, g.senders)
    exactly_once(got, m, [g.a1, g.b1], g.all, "sendUsers [42] from b3")


async def t_a_info(g):
    """clientInfo of a remote client shows its rooms and metadata."""
    await g.b2.req("setMeta", {"key": "color", "value": "red"})
    await join(g.b2, "rx")
    await join(g.b2, "ry")
    want = {"found": True, "local": False, "userId": "abc",
            "rooms": ["rx", "ry"], "meta": "red"}

    async def seen():
        return (await g.a1.resp("clientInfo", {"clientId": g.b2.id,
                                               "metaKey": "color"})) == want
    await poll(seen, 10, "A to see b2's rooms and metadata")
    # A room's channel is subscribed by the processes with members there.
    await until_numsub(g.redis, "ra", "room:rx", 1)
    await until_numsub(g.redis, "ra", "room:ra", 2)
    # A room with no member on A: a send from A still reaches it.
    m = msg("rx")
    eq(await g.a2.resp("sendRoom", {"room": "rx", "message": m}), 1,
       "sendRoom response for rx (its only member is on B)")
    got = await received(g.all, g.senders)
    exactly_once(got, m, [g.b2], g.all, "sendRoom rx from A")
    await g.b2.req("setMeta", {"key": "color"})
    await leave(g.b2, "rx")
    want = {"found": True, "local": False, "userId": "abc", "rooms": ["ry"],
            "meta": None}
    await poll(seen, 10, "A to see b2 leave rx and drop its color")
    # Unsubscribed once empty (at the next heartbeat's sweep).
    await until_numsub(g.redis, "ra", "room:rx", 0, timeout=5)


async def t_a_room_other(g):
    """test/roomOther on A puts b3 (on B) into a room and takes it out."""
    await g.a1.resp("roomOther", {"clientId": g.b3.id, "room": "ro"})

    async def in_ro():
        return (await members(g.a2, "ro")) == [(g.b3.id, g.b3.id)] and \
            (await members(g.b1, "ro")) == [(g.b3.id, g.b3.id)]
    await poll(in_ro, 10, "b3 in ro as seen on A and on B")
    eq(await g.b3.resp("listRooms", None, "system"), {"rooms": ["ro"]},
       "b3's own listRooms")
    await g.a1.resp("roomOther", {"clientId": g.b3.id, "room": "ro",
                                  "leave": True})

    async def out():
        return (await members(g.a2, "ro")) == [] and \
            (await members(g.b1, "ro")) == []
    await poll(out, 10, "b3 out of ro on both")
    got = await received(g.all, g.senders)
    eq(count(got["b3"], {"type": "user", "action": "leftRoom",
                         "data": {"roomName": "ro"}}), 1,
       "user/leftRoom frames to b3 (got %r)" % got["b3"])


async def t_a_meta_other(g):
    await g.a1.req("metaOther", {"clientId": g.b3.id, "key": "k",
                                 "value": {"n": 1}})

    async def set_():
        mine = await g.b3.resp("whoami", {"metaKey": "k"})
        there = await g.a2.resp("clientInfo", {"clientId": g.b3.id,
                                               "metaKey": "k"})
        return mine.get("meta") == {"n": 1} and there.get("meta") == {"n": 1}
    await poll(set_, 10, "b3's metadata k set from A, seen on B and on A")
    await g.a1.req("metaOther", {"clientId": g.b3.id, "key": "k"})

    async def unset():
        mine = await g.b3.resp("whoami", {"metaKey": "k"})
        there = await g.a2.resp("clientInfo", {"clientId": g.b3.id,
                                               "metaKey": "k"})
        return mine.get("meta") is None and there.get("meta") is None
    await poll(unset, 10, "b3's metadata k deleted from A")


async def t_a_events(g):
    """A custom event published on A runs the matching subscribers on A
    and on B, once each; the status relay reaches every client once."""
    for p in (g.a1, g.b1):
        await p.resp("events")
    eq(await g.a1.resp("publish", {"name": "test.ping",
                                   "message": {"n": 1}}), 2,
       "subscribers that ran on A")
    want = [{"channel": "test.ping", "priority": 5},
            {"channel": "test.ping", "priority": 0}]

    async def on_b():
        return [e for e in await g.b1.resp("events")
                if e["channel"] == "test.ping"]
    got_b = await poll(on_b, 10, "test.ping subscribers to run on B")
    await settle(g.all, g.senders)
    got_b += await on_b()
    eq(got_b, want, "test.ping subscribers run on B")
    eq([e for e in await g.a1.resp("events") if e["channel"] == "test.ping"],
       want, "test.ping subscribers run on A")
    status = {"type": "system", "action": "status",
              "data": {"state": "degraded"}}
    await g.b2.resp("publish", {"name": "status",
                                "message": {"state": "degraded"}})
    got = await received(g.all, g.senders)
    exactly_once(got, status, g.all, g.all, "status relay from B")


async def t_a_disconnect(g):
    """test/disconnect on A closes b3 (on B) with the code and reason."""
    await g.a1.req("disconnect", {"clientId": g.b3.id, "code": 4001,
                                  "reason": "bye"})
    code = await g.b3.c.wait_closed()
    eq(code, (4001, "bye"), "close seen by b3")
    g.all.remove(g.b3)

    async def gone():
        return not await sees(g.a1, g.b3.id)
    await poll(gone, 10, "A to forget b3")


async def t_a_sigterm(g):
    """SIGTERM to B: A drops B's clients at once (dead_after is 10 s);
    a1 hears that b1 left ra."""
    before = await members(g.a1, "ra")
    eq(before, sorted([(g.a1.id, 42), (g.b1.id, 42)], key=repr),
       "ra before")
    t0 = time.monotonic()
    g.B.terminate()

    async def dropped():
        return (await members(g.a1, "ra")) == [(g.a1.id, 42)]
    await poll(dropped, 8, "A to drop B's clients from ra")
    took = time.monotonic() - t0
    # The slow path (B's heartbeat key expiring) takes dead_after = 10 s;
    # the clean stop is at once, but a loaded machine delays B's exit and
    # A's reaction: 3 s plus 10 x the slowest start-up, at most 7 s.
    limit = 3 + load_slack(10, 4)
    check(took < limit, "A dropped B's clients %.1f s after SIGTERM (limit "
          "%.1f s; dead_after is 10 s: not the clean-stop path)"
          % (took, limit))
    tap.diag("(a) A dropped B's clients %.2f s after SIGTERM" % took)
    for p in (g.b1, g.b2):
        check(not await sees(g.a1, p.id), "A still knows %s" % p.name)
    eq((await metrics(g.a1))["clients"], 2, "clients counted on A")
    await g.a1.until(note("clientLeft", "ra", g.b1, 42))
    await g.a1.req("echo", 1)
    eq([f for f in g.a1.take() if f.get("action") == "clientLeft"], [],
       "more clientLeft frames to a1")
    await asyncio.to_thread(g.B.stop)


def hgetall_calls(redis):
    for line in redis.command("INFO", "commandstats").splitlines():
        if line.startswith("cmdstat_hgetall:"):
            return int(line.split("calls=")[1].split(",")[0])
    return 0


async def t_a_late_joiner(g):
    """An instance started after A published a custom event: it learns
    A's clients, and the subscribers of A's next custom event run there
    too (once), as on every worker."""
    eq(await g.a1.resp("publish", {"name": "test.before", "message": 0}), 2,
       "subscribers of test.before on A")
    g.B2.start()
    await wait_log(g.B2, connected_re("127.0.0.1:%d" % g.redis.port))
    b4 = await peer(g.B2, "b4", "77")
    g.all.append(b4)
    await until_seen(b4, [g.a1.id, g.a2.id], "B2 to see A's clients")
    await until_seen(g.a1, [b4.id], "A to see B2's client")
    await b4.resp("events")
    calls = hgetall_calls(g.redis)
    eq(await g.a1.resp("publish", {"name": "test.late", "message": 1}), 2,
       "subscribers of test.late on A")
    want = [{"channel": "test.late", "priority": 5},
            {"channel": "test.late", "priority": 0}]

    async def ran():
        return [e for e in await b4.resp("events")
                if e["channel"] == "test.late"]
    try:
        got = await poll(ran, 5, "")
    except AssertionError:
        raise AssertionError(
            "the test.late subscribers did not run on B2 within 5 s (Redis "
            "answered %d HGETALL meanwhile; B2 redisReceived %d)"
            % (hgetall_calls(g.redis) - calls,
               (await metrics(b4))["redisReceived"]))
    eq(got, want, "test.late subscribers on B2")
    m = msg("late-all")
    eq(await g.a2.resp("sendAll", {"message": m}), 3, "sendAll response")
    got = await received([g.a1, g.a2, b4], [g.a1, b4])
    exactly_once(got, m, [g.a1, g.a2, b4], [g.a1, g.a2, b4],
                 "sendAll after B2 joined")


async def run_a(redis):
    cfg = app("ra", redis.config(dead_after=10), jwt=True)
    g = Group()
    g.redis = redis
    g.A = Server(cfg, "ra-A")
    g.B = Server(cfg, "ra-B")
    g.B2 = Server(cfg, "ra-B2")
    A = tap.acase
    try:
        if not tap.case("(a) two instances start on one Redis",
                        lambda: (g.A.start(), g.B.start())):
            return
        for s in (g.A, g.B):
            await wait_log(s, connected_re("127.0.0.1:%d" % redis.port))
        await a_setup(g)
        if not await A("(a) each instance sees the other's clients "
                       "(metrics.clients, clientInfo)", t_a_view, g):
            return
        await A("(a) sendAll across instances: every client once; exclude "
                "a remote client", t_a_send_all, g)
        await A("(a) sendAll onlyMeta: remote metadata decides, each "
                "flagged client once", t_a_send_all_meta, g)
        await A("(a) room across instances: clientJoined/clientLeft, "
                "roomMembers agree, sendRoom once per member",
                t_a_rooms, g)
        await A("(a) sendRoom excluding a member on the other instance: "
                "not to it, once to every other member, both ways",
                t_a_room_exclude_remote, g)
        await A("(a) sendTo a client of the other instance, both ways",
                t_a_send_to, g)
        await A("(a) sendUsers: users with clients on both instances, "
                "each client once", t_a_send_users, g)
        await A("(a) clientInfo shows a remote client's rooms and metadata",
                t_a_info, g)
        await A("(a) roomOther joins/leaves a remote client",
                t_a_room_other, g)
        await A("(a) metaOther sets and deletes a remote client's metadata",
                t_a_meta_other, g)
        await A("(a) custom events run subscribers on both instances; the "
                "status relay reaches every client once", t_a_events, g)
        await A("(a) test/disconnect closes a remote client",
                t_a_disconnect, g)
        await A("(a) SIGTERM one instance: the other drops its clients at "
                "once, clean exit", t_a_sigterm, g)
        await A("(a) an instance started after a custom event: it runs "
                "the subscribers of the next one", t_a_late_joiner, g)
    finally:
        await close_all([p.c for p in getattr(g, "all", [])])
        await astop_servers(tap, (g.A, g.B, g.B2), only=Server.running,
                            name="(a) %s exits 0, clean log")


# ---- (b), (c) two workers of one master -------------------------------------

async def b_setup(g, n):
    async def one(i):
        p = await peer(g.S, "c%d" % i)
        p.pid = (await p.resp("pid"))["pid"]
        return p
    g.all = []
    for i in range(0, n, 25):
        g.all += await asyncio.gather(*(one(k) for k in range(i, i + 25)))
    g.pids = sorted({p.pid for p in g.all})
    g.by = {pid: [p for p in g.all if p.pid == pid] for pid in g.pids}


async def t_b_spread(g):
    workers = g.S.worker_pids()
    eq(sorted(workers), [0, 1], "worker slots")
    eq(g.pids, sorted(workers.values()),
       "pids serving %d clients (per pid %r)"
       % (len(g.all), {k: len(v) for k, v in g.by.items()}))
    check(min(len(v) for v in g.by.values()) >= 15,
          "too few clients on one worker: %r"
          % {k: len(v) for k, v in g.by.items()})
    for pid in g.pids:
        first = g.by[pid][0]

        async def all_counted(first=first):
            return (await metrics(first))["clients"] == len(g.all)
        await poll(all_counted, 15, "worker %d to count %d clients"
                   % (pid, len(g.all)))
        eq((await metrics(first))["connections"], len(g.by[pid]),
           "local connections of worker %d" % pid)
    g.senders = [g.by[pid][0] for pid in g.pids]


async def t_b_send_all(g):
    x, y = g.senders
    m = msg("all-100")
    eq(await g.by[x.pid][5].resp("sendAll", {"message": m}), len(g.all),
       "sendAll response")
    got = await received(g.all, g.senders)
    exactly_once(got, m, g.all, g.all, "sendAll to %d clients" % len(g.all))


async def t_b_room(g):
    g.room = [p for pid in g.pids for p in g.by[pid][1:11]]
    for p in g.room:
        await join(p, "big")
    await settle(g.all, g.senders)
    for p in g.all:
        p.take()  # the clientJoined notes
    await until_members(g.senders, "big", [(p.id, p.id) for p in g.room])
    sender = g.by[g.pids[0]][11]
    m = msg("big")
    eq(await sender.resp("sendRoom", {"room": "big", "message": m}), 20,
       "sendRoom response")
    got = await received(g.all, g.senders)
    exactly_once(got, m, g.room, g.all, "sendRoom to 20 members on 2 workers")


async def t_b_send_to(g):
    a = g.by[g.pids[0]][12]
    b = g.by[g.pids[1]][12]
    m, m2 = msg("to-b"), msg("to-a")
    eq(await a.resp("sendTo", {"clientId": b.id, "message": m}), 1,
       "sendTo response")
    eq(await b.resp("sendTo", {"clientId": a.id, "message": m2}), 1,
       "sendTo response (other way)")
    got = await received(g.all, g.senders)
    exactly_once(got, m, [b], g.all, "sendTo a client of the other worker")
    exactly_once(got, m2, [a], g.all, "sendTo back")


def kill9_limit():
    """How soon the others must drop a process killed with -9: dead_after
    (2 s in these apps) + heartbeat_interval (1 s) + 1.5 s of slack, plus
    up to 0.4 s more on a loaded machine (2 x the slowest start-up): below
    5 s, so the default dead_after (5 s) in place of the app's still
    fails."""
    return 2 + 1 + 1.5 + load_slack(2, 0.4)


async def t_c_kill9(g):
    """kill -9 worker 1: the master restarts it; the survivor drops the
    dead worker's clients (room members get clientLeft) in time; the new
    worker serves and sees the survivor's clients."""
    workers = g.S.worker_pids()
    victim = workers[1]
    alive = workers[0]
    dead = g.by[victim]
    live = g.by[alive]
    asker = [p for p in g.room if p.pid == alive][0]
    want = sorted(((p.id, p.id) for p in g.room if p.pid == alive),
                  key=repr)
    check(len(want) == 10, "10 members of big on the survivor")
    t0 = time.monotonic()
    os.kill(victim, signal.SIGKILL)

    async def dropped():
        return (await members(asker, "big")) == want
    await poll(dropped, 10, "the survivor to drop the dead worker's "
               "members of big")
    took = time.monotonic() - t0
    limit = kill9_limit()
    check(took <= limit, "the survivor dropped them after %.1f s (limit "
          "%.1f s)" % (took, limit))
    tap.diag("(c) the survivor dropped the killed worker's members after "
             "%.2f s" % took)
    await asyncio.to_thread(wait_until,
                            lambda: g.S.worker_pids().get(1) not in
                            (None, victim), 10, "a new worker in slot 1")
    new = g.S.worker_pids()[1]
    check(new != victim, "new pid")

    async def counted():
        return (await metrics(live[0]))["clients"] == len(live)
    await poll(counted, 10, "the survivor to count only its %d clients"
               % len(live))
    g.all = live
    g.senders = [live[0]]
    got = await received(live, g.senders)
    dead_members = [p for p in g.room if p.pid == victim]
    for p in [q for q in g.room if q.pid == alive]:
        lefts = [f for f in got[p.name] if f.get("action") == "clientLeft"]
        eq(sorted(f["data"]["clientId"] for f in lefts),
           sorted(q.id for q in dead_members),
           "clientLeft frames to %s (one per member of the dead worker)"
           % p.name)
        check(all(f["data"]["roomName"] == "big" for f in lefts),
              "clientLeft rooms %r" % lefts)
    for p in dead:
        code, _ = await p.c.wait_closed()
        eq(code, 1006, "close seen by a client of the killed worker")
    eq(log_count(g.S, r'worker=0 msg="redis: worker %s-1-0 is gone'
                 % g.S.node_id), 1,
       "lines of the survivor about dropping %s-1-0" % g.S.node_id)
    # New connections reach the new worker, which knows the survivor's.
    more = []
    try:
        for i in range(40):
            p = await peer(g.S, "n%d" % i)
            p.pid = (await p.resp("pid"))["pid"]
            more.append(p)
            if p.pid == new:
                break
        check(more[-1].pid == new, "40 new connections, none on the new "
              "worker %d" % new)
        await until_seen(more[-1], [p.id for p in live[:5]],
                         "the new worker to see the survivor's clients")
        m = msg("from-new")
        await more[-1].resp("sendTo", {"clientId": live[3].id, "message": m})
        await live[3].until(m)
    finally:
        await close_all([p.c for p in more])


async def run_bc(redis):
    cfg = app("rc", redis.config(), workers=2)
    g = Group()
    g.S = Server(cfg, "rc-cluster", workers=2)
    A = tap.acase
    try:
        if not tap.case("(b) a cluster of 2 workers starts on Redis",
                        g.S.start):
            return
        await wait_log(g.S, connected_re("127.0.0.1:%d" % redis.port), 2)
        await b_setup(g, 100)
        if not await A("(b) 100 clients spread over both workers; each "
                       "worker counts all 100", t_b_spread, g):
            return
        await A("(b) sendAll from one client reaches all 100 once",
                t_b_send_all, g)
        await A("(b) a room spanning both workers: each member once",
                t_b_room, g)
        await A("(b) sendTo a client on the other worker", t_b_send_to, g)
        await A("(c) kill -9 a worker: restarted, its clients leave the "
                "survivor's view within dead_after + heartbeat",
                t_c_kill9, g, timeout=40)
    finally:
        await close_all([p.c for p in getattr(g, "all", [])])
        if g.S.proc is not None and g.S.running():
            await asyncio.to_thread(g.S.stop_case, tap,
                                    "(b) cluster exits 0, clean log")


# ---- (d) Redis outage -------------------------------------------------------

async def t_d_outage(g):
    """Redis stops: both processes log the loss once and keep serving
    their own clients; sends meant for the other process are dropped and
    counted."""
    C, D, redis = g.C, g.D, g.redis
    # c0 sends to everybody every 10 ms while Redis goes away.
    sent = []
    stop = asyncio.Event()

    async def traffic():
        i = 0
        while not stop.is_set():
            sent.append((i, await g.c0.resp("sendAll",
                                             {"message": msg("t", i)})))
            i += 1
            await asyncio.sleep(0.01)
    task = asyncio.ensure_future(traffic())
    try:
        await poll(lambda: asyncio.sleep(0, len(sent) >= 3), 10,
                   "traffic before the stop")
        redis.stop()
        where = "127.0.0.1:%d" % redis.port
        for s in (C, D):
            await wait_log(s, r"redis %s: connection lost \("
                           % re.escape(where))
        await poll(lambda: asyncio.sleep(0, sum(n == 3 for _, n in sent)
                                         >= 3), 10,
                   "traffic during the outage")
    finally:
        stop.set()
        await task
    eq({n for _, n in sent} - {5, 3}, set(), "sendAll responses during "
       "the traffic: 5 (all reached) or 3 (only local ones)")
    g.sent = sent
    for p in (g.c0, g.c2):
        await p.req("echo", 0)
        eq([f["data"] for f in p.take() if f.get("action") == "t"],
           [i for i, _ in sent], "traffic delivered to %s (local)" % p.name)
    before = await metrics(g.c1)
    m_all, m_room, m_to = msg("out-all"), msg("out-room"), msg("out-to")
    n_all = await g.c1.resp("sendAll", {"message": m_all})
    n_room = await g.c2.resp("sendRoom", {"room": "o", "message": m_room})
    n_to = await g.c1.resp("sendTo", {"clientId": g.d1.id, "message": m_to})
    after = await metrics(g.c1)
    eq(after["redisDropped"] - before["redisDropped"], 3,
       "redisDropped after sendAll, sendRoom, sendTo during the outage "
       "(before %d)" % before["redisDropped"])
    eq((n_all, n_room, n_to), (3, 2, 0), "(sendAll, sendRoom, sendTo) "
       "responses: only local clients are reached")
    for p, frames in ((g.c1, [m_all, m_room]), (g.c2, [m_all, m_room])):
        await p.req("echo", 0)
        eq([f for f in p.take()
            if f.get("type") == "m" and f["action"] != "t"], frames,
           "local delivery to %s during the outage" % p.name)
    check(C.running() and D.running(), "a process exited")
    g.outage = [m_all, m_room, m_to]
    # Membership changes while Redis is away.
    await g.c0.close()
    await g.d2.close()
    await leave(g.c2, "o")
    g.d3 = await peer(D, "d3")
    await join(g.d3, "o")
    g.c3 = await peer(C, "c3")
    await join(g.c3, "o")
    for p in (g.c1, g.d1):  # local notes only
        await p.req("echo", 0)
    eq([f["data"]["clientId"] for f in g.c1.take()
        if f.get("action") in ("clientJoined", "clientLeft")],
       [g.c2.id, g.c3.id], "notes to c1 during the outage (c2 left, c3 "
       "joined)")
    d1 = g.d1.take()
    g.d1_traffic = [f["data"] for f in d1 if f.get("action") == "t"]
    eq([f["data"]["clientId"] for f in d1
        if f.get("action") in ("clientJoined", "clientLeft")],
       [g.d2.id, g.d3.id], "notes to d1 during the outage (d2 left, d3 "
       "joined)")
    # A longer outage: attempts to reconnect fail again and again.
    g.failed = await failed_attempts(redis.port, 8, 1)


async def t_d_recover(g):
    """Redis back on the same port: both reconnect (no restart), the
    membership heals, delivery across resumes, the dropped messages never
    arrive."""
    C, D, redis = g.C, g.D, g.redis
    redis.start()
    where = "127.0.0.1:%d" % redis.port
    for s in (C, D):
        await wait_log(s, connected_re(where), 2, timeout=10)
    want = sorted([(p.id, p.id) for p in (g.c1, g.c3, g.d1, g.d3)],
                  key=repr)

    async def healed():
        return (await members(g.c1, "o")) == want and \
            (await members(g.d1, "o")) == want
    try:
        await poll(healed, 10, "roomMembers of o to heal on both")
    except AssertionError:
        raise AssertionError("roomMembers of o did not heal:\n  on C: %r\n"
                             "  on D: %r\n  expected: %r"
                             % (await members(g.c1, "o"),
                                await members(g.d1, "o"), want))
    check(not await sees(g.c1, g.d2.id), "C still knows d2 (left during "
          "the outage)")
    eq((await g.d1.resp("clientInfo", {"clientId": g.c2.id}))["rooms"], [],
       "c2's rooms as seen on D")
    for p in (g.c1, g.d1):
        async def five(p=p):
            return (await metrics(p))["clients"] == 5
        await poll(five, 10, "%s's process to count 5 clients" % p.name)
    peers = [g.c1, g.c2, g.c3, g.d1, g.d3]
    senders = [g.c1, g.d1]
    got = await received(peers, senders)
    eq(sorted(f["data"]["clientId"] for f in got["c1"]
              if f.get("action") == "clientLeft"), [g.d2.id],
       "clientLeft notes to c1 after the heal (got %r)" % got["c1"])
    eq(sorted(f["data"]["clientId"] for f in got["c1"]
              if f.get("action") == "clientJoined"), [g.d3.id],
       "clientJoined notes to c1 after the heal")
    eq(sorted(f["data"]["clientId"] for f in got["d1"]
              if f.get("action") in ("clientLeft", "clientJoined")),
       sorted([g.c2.id, g.c3.id]), "notes to d1 after the heal")
    m = msg("back-all")
    eq(await g.c2.resp("sendAll", {"message": m}), 5, "sendAll response")
    m2 = msg("back-room")
    eq(await g.d3.resp("sendRoom", {"room": "o", "message": m2}), 4,
       "sendRoom response")
    m3 = msg("back-to")
    eq(await g.c3.resp("sendTo", {"clientId": g.d1.id, "message": m3}), 1,
       "sendTo response")
    got2 = await received(peers, senders)
    exactly_once(got2, m, peers, peers, "sendAll after recovery")
    exactly_once(got2, m2, [g.c1, g.c3, g.d1, g.d3], peers,
                 "sendRoom after recovery")
    exactly_once(got2, m3, [g.d1], peers, "sendTo after recovery")
    for p in (g.d1, g.d3):
        stale = [f for f in got[p.name] + got2[p.name] if f in g.outage]
        eq(stale, [], "messages dropped during the outage that reached "
           + p.name)
    # The traffic: d1 got each message at most once, in order, and none
    # that was sent while its sender knew Redis was down.
    t = g.d1_traffic + [f["data"] for f in got["d1"] + got2["d1"]
                        if f.get("action") == "t"]
    check(t == sorted(set(t)), "traffic at d1 not once each in order: %r"
          % t)
    down = [i for i, n in g.sent if n == 3]
    eq([i for i in t if i in down], [], "traffic sent during the outage "
       "that reached d1 (sent while down: %r)" % down)
    check(t and t[0] == 0, "the traffic before the stop did not reach d1: "
          "%r" % t)
    eq((C.proc.pid, D.proc.pid), g.pids, "pids (no restart)")
    for s in (C, D):
        name = os.path.basename(s.cfg)[:-4]
        eq((log_count(s, connected_re(where)),
            log_count(s, r"redis %s: connection lost" % re.escape(where)),
            log_count(s, r"redis %s: cannot connect" % re.escape(where))),
           (2, 1, 0), "%s log lines (connected, connection lost, cannot "
           "connect) after %d failed connections" % (name, g.failed))


async def run_d():
    redis = RedisServer(name="redis-outage")
    g = Group()
    g.redis = redis
    cfg = app("ro", redis.config())
    g.C = Server(cfg, "ro-C")
    g.D = Server(cfg, "ro-D")
    peers = []
    try:
        if not tap.case("(d) Redis and two instances start",
                        lambda: (redis.start(), g.C.start(), g.D.start())):
            return
        for s in (g.C, g.D):
            await wait_log(s, connected_re("127.0.0.1:%d" % redis.port))
        g.pids = (g.C.proc.pid, g.D.proc.pid)
        g.c0 = await peer(g.C, "c0")
        g.c1 = await peer(g.C, "c1")
        g.c2 = await peer(g.C, "c2")
        g.d1 = await peer(g.D, "d1")
        g.d2 = await peer(g.D, "d2")
        peers = [g.c1, g.c2, g.d1, g.d2]
        for p in peers:
            await join(p, "o")
        want = sorted([(p.id, p.id) for p in peers], key=repr)

        async def ready():
            return (await members(g.c1, "o")) == want and \
                (await members(g.d1, "o")) == want
        await poll(ready, 10, "room o on both")
        peers.append(g.c0)
        await until_seen(g.d1, [g.c0.id], "D to see c0")
        await settle(peers, [g.c1, g.d1])
        for p in peers:
            p.take()
        if await tap.acase("(d) Redis stops: local delivery goes on, sends "
                           "for the other instance are dropped and counted",
                           t_d_outage, g):
            peers += [g.d3, g.c3]
            await tap.acase("(d) Redis restarts on the same port: "
                            "membership heals, delivery resumes, dropped "
                            "messages never arrive; one log line per state "
                            "change", t_d_recover, g, timeout=30)
    finally:
        await close_all([p.c for p in peers])
        await astop_servers(tap, (g.C, g.D), only=Server.running,
                            name="(d) %s exits 0, clean log")
        redis.kill()


# ---- (e) redis.required -----------------------------------------------------

def write_app(text, name):
    path = os.path.join(tmpdir(), name + ".cfg")
    with open(path, "w") as f:
        f.write(text)
    return path


def t_e_required():
    port = unused_port()
    cfg = write_app(app("rq", "redis = { port = %d; required = true; };"
                        % port), "required")
    t0 = time.monotonic()
    rc, out, err = run_serve([cfg], timeout=20)
    eq(rc, 1, "exit code (stderr %r)" % err)
    check("redis.required is true and Redis at 127.0.0.1:%d cannot be used: "
          % port in err, "stderr does not say why: %r" % err)
    check("listening on" not in err, "it listened: %r" % err)
    # Refused at once (nothing listens on the port): no waiting out
    # retries. 5 s plus 10 x the slowest start-up (at most 8 s) leaves room
    # for an ASan build on a loaded machine.
    took = time.monotonic() - t0
    limit = 5 + load_slack(10, 3)
    check(took < limit, "took %.1f s (limit %.1f s)" % (took, limit))


class Blackhole:
    """Accepts TCP connections on a port and closes them at once, noting
    when (a Redis that fails every attempt)."""

    def __init__(self, port):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(16)
        self.sock.settimeout(0.05)
        self.times = []
        self.stopping = False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    @property
    def accepted(self):
        return len(self.times)

    def run(self):
        while not self.stopping:
            try:
                c, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.times.append(time.monotonic())
            c.close()

    def close(self):
        self.stopping = True
        self.thread.join(5)
        self.sock.close()

    def max_gap(self):
        return max((b - a for a, b in zip(self.times, self.times[1:])),
                   default=0)


async def failed_attempts(port, n, cap):
    """Let pxl fail to connect until n connections were refused
    (accepted and closed: each attempt opens two); the gaps between them
    stay within cap (redis.retry_max_delay) + slack."""
    hole = Blackhole(port)
    try:
        await asyncio.to_thread(wait_until, lambda: hole.accepted >= n, 10,
                                "%d failed connections" % n)
    finally:
        hole.close()
    # 0.6 s of slack, up to 0.3 s more on a loaded machine (2 x the
    # slowest start-up): below cap + 1 s, so a backoff that is not capped
    # (2 s after 1 s) still fails.
    slack = 0.6 + load_slack(2, 0.3)
    check(hole.max_gap() <= cap + slack,
          "%.2f s between attempts to connect (retry_max_delay is %d s, "
          "+%.2f s slack)" % (hole.max_gap(), cap, slack))
    return hole.accepted


async def t_e_late(g):
    """required = false, no Redis: starts and serves; one 'cannot connect'
    line however often it retries; joins the cluster once Redis is there;
    then kill -9 of the other instance: dropped within dead_after +
    heartbeat_interval."""
    port = g.port
    where = "127.0.0.1:%d" % port
    E1 = g.E1
    await wait_log(E1, r"redis %s: cannot connect \(" % re.escape(where))
    x = await peer(E1, "x")
    g.peers.append(x)
    eq(await x.resp("echo", "local"), "local", "echo without Redis")
    y = await peer(E1, "y")
    g.peers.append(y)
    eq(await x.resp("sendAll", {"message": msg("solo")}), 2,
       "sendAll response without Redis")
    await y.until(msg("solo"))
    n = await failed_attempts(port, 5, 1)
    eq(log_count(E1, r"redis %s: cannot connect" % re.escape(where)), 1,
       "'cannot connect' lines after %d more failed connections" % n)
    eq(log_count(E1, r"redis %s: connection lost" % re.escape(where)), 0,
       "'connection lost' lines before Redis was ever up")
    g.redis = RedisServer(port=port, name="redis-late").start()
    await wait_log(E1, connected_re(where), timeout=10)
    g.E2.start()
    await wait_log(g.E2, connected_re(where))
    z = await peer(g.E2, "z")
    g.peers.append(z)
    await until_seen(x, [z.id], "E1 to see E2's client")
    await until_seen(z, [x.id, y.id], "E2 to see E1's clients")
    await send_both_ways(x, z, "late", back_to=y)
    await join(x, "late")
    await join(z, "late")
    await x.until(note("clientJoined", "late", z, z.id))
    # kill -9 E2: E1 drops it once its heartbeat key has expired.
    t0 = time.monotonic()
    g.E2.proc.kill()
    g.E2.proc.wait(5)

    async def dropped():
        return not await sees(x, z.id)
    await poll(dropped, 10, "E1 to drop the killed instance's client")
    took = time.monotonic() - t0
    limit = kill9_limit()
    check(took <= limit, "dropped %.1f s after kill -9 (limit %.1f s)"
          % (took, limit))
    tap.diag("(e) E1 dropped the killed E2 after %.2f s" % took)
    await x.until(note("clientLeft", "late", z, z.id))
    eq(await members(x, "late"), [(x.id, x.id)], "late after the drop")
    g.peers.remove(z)


async def run_e():
    tap.case("(e) redis.required = true, no Redis: exit 1 naming it",
             t_e_required)
    g = Group()
    g.port = unused_port()
    g.redis = None
    g.peers = []
    cfg = app("rl", "redis = { port = %d; heartbeat_interval = 1; "
              "dead_after = 2; retry_max_delay = 1; };" % g.port)
    g.E1 = Server(cfg, "rl-E1")
    g.E2 = Server(cfg, "rl-E2")
    try:
        if not tap.case("(e) redis.required = false, no Redis: starts",
                        g.E1.start):
            return
        await tap.acase("(e) required = false: serves without Redis, one "
                        "'cannot connect' line, joins when Redis appears; "
                        "kill -9 of the other instance is noticed in time",
                        t_e_late, g, timeout=40)
    finally:
        await close_all([p.c for p in g.peers])
        if g.E1.running():
            await asyncio.to_thread(g.E1.stop_case, tap,
                                    "(e) rl-E1 exits 0, clean log")
        if g.redis is not None:
            g.redis.kill()


# ---- (f) password, ACL user, database, unix socket --------------------------

async def send_both_ways(x, y, tag, back_to=None):
    """sendTo from x to y arrives, then from y to back_to (default x)."""
    back_to = back_to or x
    m = msg(tag)
    eq(await x.resp("sendTo", {"clientId": y.id, "message": m}), 1,
       "sendTo response")
    await y.until(m)
    m = msg(tag + "-back")
    eq(await y.resp("sendTo", {"clientId": back_to.id, "message": m}), 1,
       "sendTo response (back)")
    await back_to.until(m)


async def cross(s1, s2):
    """A client on each; both see each other; sendTo both ways."""
    x = await peer(s1, "x")
    y = await peer(s2, "y")
    try:
        await until_seen(x, [y.id], "the first instance to see the second's "
                         "client")
        await until_seen(y, [x.id], "the second instance to see the first's "
                         "client")
        await send_both_ways(x, y, "cross")
    finally:
        await close_all([x.c, y.c])


def refused(redis_text, what):
    cfg = write_app(app("rbad", redis_text), "bad")
    rc, out, err = run_serve([cfg], timeout=20)
    eq(rc, 1, "exit code with %s (stderr %r)" % (what, err))
    check("redis.required is true and Redis at " in err and
          "cannot be used: AUTH refused" in err,
          "stderr with %s does not name AUTH refused: %r" % (what, err))


async def pair(label, name, redis_text, where, check_fn=None):
    cfg = app(name, redis_text, notify=False)
    s1 = Server(cfg, name + "-1")
    s2 = Server(cfg, name + "-2")
    servers = [s1, s2]

    async def body():
        s1.start()
        s2.start()
        for s in servers:
            await wait_log(s, connected_re(where))
        await cross(s1, s2)
        if check_fn is not None:
            check_fn()
    try:
        await tap.acase(label, body, timeout=30)
    finally:
        await astop_servers(tap, servers, only=Server.running,
                            name="(f) %s exits 0, clean log")


async def run_f(plain):
    pw = RedisServer(password="pw-s3cret", name="redis-pw")
    acl = RedisServer(user="pxluser", password="acl-s3cret", name="redis-acl")
    unix = RedisServer(socket=True, tcp=False, name="redis-unix")
    try:
        if not tap.case("(f) Redis with requirepass, with an ACL user, on a "
                        "unix socket start",
                        lambda: (pw.start(), acl.start(), unix.start())):
            return
        await pair("(f) redis.password: two instances deliver across",
                   "rpw", pw.config(), "127.0.0.1:%d" % pw.port)
        tap.case("(f) wrong redis.password, required: exit 1, AUTH refused",
                 refused, pw.config(password="wrong", required=True),
                 "a wrong password")
        await pair("(f) redis.user + password (ACL user; default user off): "
                   "two instances deliver across", "racl", acl.config(),
                   "127.0.0.1:%d" % acl.port)
        tap.case("(f) ACL user with a wrong password, required: exit 1, AUTH "
                 "refused", refused, acl.config(password="nope",
                                           required=True),
                 "a wrong ACL password")

        def in_db5():
            eq(plain.command("EXISTS", "pxl:rdb:workers", db=5), 1,
               "pxl:rdb:workers in database 5")
            eq(len(plain.command("SMEMBERS", "pxl:rdb:workers", db=5)), 2,
               "live workers listed in database 5")
            keys = plain.command("KEYS", "pxl:rdb:*", db=5)
            check(any(k.startswith("pxl:rdb:alive:") for k in keys) and
                  any(k.startswith("pxl:rdb:clients:") for k in keys),
                  "keys in database 5: %r" % keys)
            eq(plain.command("KEYS", "pxl:rdb:*", db=0), [],
               "pxl:rdb:* keys in database 0")
        await pair("(f) redis.database = 5: delivery across, membership keys "
                   "in database 5 only", "rdb", plain.config(database=5),
                   "127.0.0.1:%d" % plain.port, in_db5)
        await pair("(f) redis.socket: two instances deliver across through "
                   "a unix socket", "rsock", unix.config(), unix.socket)
    finally:
        for r in (pw, acl, unix):
            r.kill()


# ---- main -------------------------------------------------------------------

async def main():
    t0 = time.monotonic()
    shared = RedisServer(name="redis-shared")
    if not tap.case("redis-server starts and answers PING", shared.start):
        return
    try:
        await run_a(shared)
        await run_bc(shared)
        await run_d()
        await run_e()
        await run_f(shared)
    finally:
        shared.kill()
        tap.diag("took %.1f s" % (time.monotonic() - t0))


tap.run(main)
