"""
test_broadcast - sending through the plugin API (testkit's test/send*
routes) to rooms, everybody, one client and users; metadata shared between
plugins; unique client ids over 1,000 connections; one encode per
broadcast (test/metrics); and the opt-in presence list (system/clientList)
with exact frames and order after the 101.
"""
import asyncio
import os
import sys
import time

sys.dont_write_bytecode = True

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from pxltest import (CLIENT_ID_RE, TAP, Server,  # noqa: E402
                     app_config, astop_servers, check, eq, jwt_hs)
from pxlws import close_all, connect, connect_id, poll  # noqa: E402

tap = TAP()
tap.deadline(60)

SECRET = "broadcast-test-secret"
MSG = {"type": "chat", "action": "message",
       "data": {"text": "h\u00e9llo \u20ac \U0001F600", "n": [1, 2.5, None],
                "ok": True}}


# ---- helpers ----------------------------------------------------------------

async def tk(c, action, data, rid=None):
    """A testkit request; returns its response (exact reply envelope)."""
    msg = {"type": "test", "action": action, "data": data}
    if rid is not None:
        msg["requestId"] = rid
    await c.send_json(msg)
    r = await c.recv()
    exp_keys = {"type", "action", "response"} | ({"requestId"} if rid
                                                  is not None else set())
    check(isinstance(r, dict) and r.get("type") == "test"
          and r.get("action") == action and set(r) == exp_keys,
          "expected the test/%s reply, got %r" % (action, r))
    return r["response"]


async def tk_noreply(c, action, data):
    """A testkit request whose reply has no response key."""
    await c.send_json({"type": "test", "action": action, "data": data})
    eq(await c.recv(), {"type": "test", "action": action},
       "test/%s reply" % action)


async def join(c, room):
    await c.send_json({"type": "system", "action": "joinRoom",
                       "data": {"roomName": room}})
    r = await c.recv()
    check(r.get("type") == "system" and r.get("action") == "joinRoom"
          and r["response"]["success"] is True, "joinRoom failed: %r" % r)


async def leave(c, room):
    await c.send_json({"type": "system", "action": "leaveRoom",
                       "data": {"roomName": room}})
    eq(await c.recv(), {"type": "user", "action": "leftRoom",
                        "data": {"roomName": room}}, "leftRoom frame")
    r = await c.recv()
    check(r.get("action") == "leaveRoom" and r["response"]["success"],
          "leaveRoom failed: %r" % r)


async def whoami(c, **data):
    return await tk(c, "whoami", data)


async def settle(c, n):
    """Wait until the server has exactly n clients (earlier cases gone)."""
    async def ok():
        return (await whoami(c))["clients"] == n
    await poll(ok, what="the server to have %d clients" % n)


async def got_once(c, msg, what):
    eq(await c.sync(), [msg], what)


async def tk_own(c, action, data, msg, count):
    """A send request by a recipient: its own copy, then the reply."""
    await c.send_json({"type": "test", "action": action, "data": data})
    eq(await c.recv(), msg, "the sender's own copy (before the reply)")
    eq(await c.recv(), {"type": "test", "action": action, "response": count},
       "test/%s reply" % action)


async def many(url, n, **kw):
    out = []
    try:
        for _ in range(n):
            out.append(await connect_id(url, **kw))
    except BaseException:
        await close_all([c for c, _ in out])
        raise
    return out


# ---- cases: rooms, all, one -------------------------------------------------

async def t_room(url):
    cl = await many(url, 5)
    (m1, _), (m2, _), (m3, m3id), (n1, _), (n2, _) = cl
    try:
        for m in (m1, m2, m3):
            await join(m, "news")
        await join(n2, "other")
        eq(await tk(n1, "sendRoom", {"room": "news", "message": MSG}), 3,
           "sendRoom count (3 members)")
        for i, m in enumerate((m1, m2, m3)):
            await got_once(m, MSG, "member %d" % (i + 1))
        await n1.expect_nothing("frames to the (non-member) sender")
        await n2.expect_nothing("frames to a non-member")

        # After m3 leaves, it no longer gets news.
        await leave(m3, "news")
        msg2 = {"seq": 2}
        eq(await tk(n2, "sendRoom", {"room": "news", "message": msg2}), 2,
           "sendRoom count after a leave")
        await got_once(m1, msg2, "m1 after m3 left")
        await got_once(m2, msg2, "m2 after m3 left")
        await m3.expect_nothing("frames to a member that left")
        await n1.expect_nothing("frames to n1")

        # A member sender gets its own copy (queued before the reply).
        msg3 = {"seq": 3}
        await m1.send_json({"type": "test", "action": "sendRoom",
                            "data": {"room": "news", "message": msg3}})
        eq(await m1.recv(), msg3, "the sender's own copy")
        eq(await m1.recv(), {"type": "test", "action": "sendRoom",
                             "response": 2}, "then the reply")
        await got_once(m2, msg3, "m2")
        eq(await tk(n1, "sendRoom", {"room": "nobody-here",
                                     "message": msg3}), 0,
           "sendRoom to an unknown room reaches 0")
        await n1.expect_nothing("frames to n1 after the last sends")
        check(m3id, "m3 had an id")
    finally:
        await close_all([c for c, _ in cl])


async def t_room_exclude(url):
    cl = await many(url, 3)
    (a, aid), (b, _), (c, _) = cl
    try:
        for x in (a, b, c):
            await join(x, "ex")
        msg = {"ex": 1}
        await a.send_json({"type": "test", "action": "sendRoom",
                           "data": {"room": "ex", "message": msg,
                                    "exclude": aid}})
        eq(await a.recv(), {"type": "test", "action": "sendRoom",
                            "response": 2}, "reply; no copy for the "
                                            "excluded sender")
        await a.expect_nothing("frames to the excluded sender")
        await got_once(b, msg, "b")
        await got_once(c, msg, "c")
        # Excluding somebody else.
        bid = b.cid
        await tk_own(a, "sendRoom", {"room": "ex", "message": msg,
                                     "exclude": bid}, msg, 2)
        await a.expect_nothing("frames to a")
        await got_once(c, msg, "c")
        await b.expect_nothing("frames to the excluded b")
    finally:
        await close_all([x for x, _ in cl])


async def t_all_exclude(url):
    probe, _ = await connect_id(url)
    cl = []
    try:
        await settle(probe, 1)
        cl = await many(url, 4)
        (a, aid), (b, _), (c, _), (d, did) = cl
        msg = {"all": "but d"}
        await tk_own(a, "sendAll", {"message": msg, "exclude": did}, msg, 4)
        await a.expect_nothing("frames to the sender")
        for x in (b, c, probe):
            await got_once(x, msg, "a client")
        await d.expect_nothing("frames to the excluded client")
        msg2 = {"all": True}
        await tk_own(d, "sendAll", {"message": msg2}, msg2, 5)
        await d.expect_nothing("frames to the sender")
        for x in (a, b, c, probe):
            await got_once(x, msg2, "a client")
        msg3 = {"all": "but me"}
        eq(await tk(a, "sendAll", {"message": msg3, "exclude": aid}), 4,
           "sendAll excluding the sender")
        await a.expect_nothing("frames to the excluded sender")
        for x in (b, c, d, probe):
            await got_once(x, msg3, "a client")
    finally:
        await close_all([x for x, _ in cl] + [probe])


async def t_all_predicate(url):
    probe, _ = await connect_id(url)
    cl = []
    try:
        await settle(probe, 1)
        cl = await many(url, 4)
        (a, _), (b, bid), (c, _), (d, did) = cl
        await tk_noreply(a, "setMeta", {"key": "vip", "value": True})
        await tk_noreply(b, "setMeta", {"key": "vip", "value": True})
        await tk_noreply(c, "setMeta", {"key": "vip", "value": False})
        await tk_noreply(d, "setMeta", {"key": "other", "value": True})
        msg = {"vip": "only"}
        eq(await tk(c, "sendAll", {"message": msg, "onlyMeta": "vip"}), 2,
           "sendAll to clients with vip")
        for x in (a, b):
            await got_once(x, msg, "a vip")
        for x in (c, d, probe):
            await x.expect_nothing("frames to a non-vip")
        # predicate and exclude together
        eq(await tk(c, "sendAll", {"message": msg, "onlyMeta": "vip",
                                   "exclude": bid}), 1, "vip but not b")
        await got_once(a, msg, "a")
        await b.expect_nothing("frames to the excluded vip")
        # deleting the key (no value) takes b out
        await tk_noreply(a, "setMeta", {"key": "vip"})
        eq(await tk(c, "sendAll", {"message": msg, "onlyMeta": "vip"}), 1,
           "after a deleted its vip key")
        await got_once(b, msg, "b")
        await a.expect_nothing("frames to a after its key was deleted")
        check(did, "d had an id")
    finally:
        await close_all([x for x, _ in cl] + [probe])


async def t_send_to(url):
    cl = await many(url, 3)
    (a, _), (b, bid), (c, _) = cl
    try:
        msg = {"to": "b"}
        eq(await tk(a, "sendTo", {"clientId": bid, "message": msg}), 1,
           "sendTo count")
        await got_once(b, msg, "b")
        await a.expect_nothing("frames to the sender")
        await c.expect_nothing("frames to another client")
        await tk_own(b, "sendTo", {"clientId": bid, "message": "self"},
                     "self", 1)
        await b.expect_nothing("frames to b")
    finally:
        await close_all([x for x, _ in cl])


async def t_send_to_self_order(url):
    c, cid = await connect_id(url)
    try:
        await c.send_json({"type": "test", "action": "sendTo",
                           "data": {"clientId": cid, "message": [1, "x"]}})
        eq(await c.recv(), [1, "x"], "own message (a JSON array) first")
        eq(await c.recv(), {"type": "test", "action": "sendTo",
                            "response": 1}, "then the reply")
    finally:
        await c.close()


async def t_meta_peer(url):
    cl = await many(url, 2)
    (a, aid), (b, _) = cl
    try:
        val = {"color": "blue", "n": [1, {"x": None}], "s": "\u00e9"}
        await tk_noreply(a, "setMeta", {"key": "prefs", "value": val})
        await b.send_json({"type": "peer", "action": "meta",
                           "data": {"clientId": aid, "key": "prefs"}})
        eq(await b.recv(), {"type": "peer", "action": "meta",
                            "response": val},
           "peer plugin reads testkit's metadata")
        await b.send_json({"type": "peer", "action": "meta",
                           "data": {"clientId": aid, "key": "unset"}})
        eq(await b.recv(), {"type": "peer", "action": "meta",
                            "response": None}, "unset key -> null")
        eq((await whoami(a, metaKey="prefs"))["meta"], val,
           "whoami metaKey")
        await tk_noreply(a, "setMeta", {"key": "prefs", "value": 7})
        await b.send_json({"type": "peer", "action": "meta",
                           "data": {"clientId": aid, "key": "prefs"}})
        eq(await b.recv(), {"type": "peer", "action": "meta",
                            "response": 7}, "overwritten value")
    finally:
        await close_all([x for x, _ in cl])


async def t_kick(url):
    cl = await many(url, 2)
    (a, _), (b, bid) = cl
    try:
        await tk_noreply(a, "disconnect", {"clientId": bid, "code": 4321,
                                           "reason": "bye"})
        code, reason = await b.wait_closed()
        eq((code, reason), (4321, "bye"), "close code and reason seen by b")
        await a.expect_nothing("frames to the kicker")
    finally:
        await close_all([x for x, _ in cl])


async def t_ids_1000(url):
    clients = []
    ids = []
    try:
        for _ in range(10):
            batch = await asyncio.gather(*(connect_id(url)
                                           for _ in range(100)),
                                         return_exceptions=True)
            errors = [r for r in batch if isinstance(r, BaseException)]
            for r in batch:
                if not isinstance(r, BaseException):
                    clients.append(r[0])
                    ids.append(r[1])
            if errors:
                raise AssertionError("%d of 100 connections failed after "
                                     "%d: %r" % (len(errors), len(ids),
                                                 errors[0]))
        eq(len(ids), 1000, "connections")
        bad = [i for i in ids if not CLIENT_ID_RE.match(i)]
        eq(bad, [], "ids that are not 32 lowercase hex")
        eq(len(set(ids)), 1000, "unique ids among 1000")
        eq((await whoami(clients[0]))["clients"] >= 1000, True,
           "whoami counts the clients")
    finally:
        for i in range(0, len(clients), 200):
            await close_all(clients[i:i + 200])


async def t_one_encode(url):
    cl = await many(url, 6)
    s = cl[0][0]
    members = [c for c, _ in cl[1:]]
    try:
        for m in members:
            await join(m, "enc")
        await settle(s, 6)
        # Control: what one test/metrics reply adds between two snapshots.
        m0 = await tk(s, "metrics", None)
        m1 = await tk(s, "metrics", None)
        ctrl_fe = m1["framesEncoded"] - m0["framesEncoded"]
        ctrl_mo = m1["messagesOut"] - m0["messagesOut"]
        eq(ctrl_mo, 1, "messagesOut for one reply")
        # metrics reply + sendRoom broadcast to 5 + sendRoom reply.
        msg = {"enc": "x" * 100}
        eq(await tk(s, "sendRoom", {"room": "enc", "message": msg}), 5,
           "sendRoom count")
        m2 = await tk(s, "metrics", None)
        fe = m2["framesEncoded"] - m1["framesEncoded"]
        mo = m2["messagesOut"] - m1["messagesOut"]
        check(fe == 2 * ctrl_fe + 1,
              "framesEncoded grew by %d for one broadcast to 5 members and "
              "two replies (one reply encodes %d frame(s)); expected %d: "
              "one encode for the broadcast" % (fe, ctrl_fe, 2 * ctrl_fe + 1))
        eq(mo, 2 + 5, "messagesOut: two replies + 5 deliveries")
        for m in members:
            await got_once(m, msg, "a member")
        # The same for a room of one: the encode count does not depend on N.
        await join(s, "solo")
        m4 = await tk(s, "metrics", None)
        await tk_own(s, "sendRoom", {"room": "solo", "message": msg}, msg, 1)
        m5 = await tk(s, "metrics", None)
        check(m5["framesEncoded"] - m4["framesEncoded"] == fe,
              "framesEncoded for a broadcast to 1 (%d) differs from one "
              "to 5 (%d)" % (m5["framesEncoded"] - m4["framesEncoded"], fe))
        eq(m5["messagesOut"] - m4["messagesOut"], 2 + 1,
           "messagesOut for a broadcast to 1")
        await s.expect_nothing("frames to the solo member")
    finally:
        await close_all([c for c, _ in cl])


async def t_users(url):
    def tok(sub):
        return jwt_hs({"sub": sub}, SECRET)
    u1a = await connect(url + "?token=" + tok("u1"))
    u1b = await connect(url, extra_headers={"Authorization":
                                            "Bearer " + tok("u1")})
    u2 = await connect(url + "?token=" + tok("u2"))
    n42 = await connect(url + "?token=" + tok("42"))
    anon = await connect(url)
    allc = [u1a, u1b, u2, n42, anon]
    try:
        for c in allc:
            await c.hello()
        for c, uid in ((u1a, "u1"), (u1b, "u1"), (u2, "u2"), (n42, 42)):
            eq(await c.recv(), {"type": "auth", "action": "authenticated",
                                "data": {"userId": uid, "message":
                                         "Authentication successful"}},
               "authenticated frame")
        got = await tk(anon, "userClients", {"userId": "u1"})
        eq(sorted(got), sorted([u1a.cid, u1b.cid]), "userClients u1")
        eq(await tk(anon, "userClients", {"userId": 42}), [n42.cid],
           "userClients 42")
        eq(await tk(anon, "userClients", {"userId": "nobody"}), [],
           "userClients of an unknown user")
        msg = {"to": "u1"}
        eq(await tk(anon, "sendUsers", {"userIds": ["u1", "u1"],
                                        "message": msg}), 2,
           "sendUsers count (u1 twice, two connections)")
        await got_once(u1a, msg, "u1's first connection, once")
        await got_once(u1b, msg, "u1's second connection, once")
        for c in (u2, n42, anon):
            await c.expect_nothing("frames to other users")
        msg2 = {"to": ["u2", 42]}
        eq(await tk(anon, "sendUsers", {"userIds": ["u2", 42, "zz"],
                                        "message": msg2}), 2, "count")
        await got_once(u2, msg2, "u2")
        await got_once(n42, msg2, "42")
        for c in (u1a, u1b, anon):
            await c.expect_nothing("frames to others")
        # u1a leaves: only u1b is left for u1.
        await u1a.close()
        await poll(lambda: _count_user(anon, "u1", 1),
                   what="u1 to have one connection")
        eq(await tk(anon, "sendUsers", {"userIds": ["u1"], "message": msg}),
           1, "count after one connection of u1 left")
        await got_once(u1b, msg, "u1b")
    finally:
        await close_all(allc)


async def _count_user(c, uid, n):
    return len(await tk(c, "userClients", {"userId": uid})) == n


# ---- presence ---------------------------------------------------------------

def is_list(f):
    return (isinstance(f, dict) and f.get("type") == "system"
            and f.get("action") == "clientList")


def check_list(f, kind, expect_users, payload=False):
    """f is a clientList frame of kind whose data lists exactly the
    clients in expect_users {clientId: user} (user None or the JWT
    payload dict)."""
    check(is_list(f), "not a system/clientList frame: %r" % (f,))
    eq(sorted(f), ["action", "clientListType", "data", "type"],
       "clientList frame keys")
    eq(f["clientListType"], kind, "clientListType")
    check(isinstance(f["data"], list), "data is not a list: %r" % (f,))
    seen = {}
    now = time.time() * 1000
    for e in f["data"]:
        check(isinstance(e, dict), "entry %r" % (e,))
        eq(sorted(e), ["clientId", "lastActivity", "user"],
           "clientList entry keys (entry %r)" % (e,))
        la = e["lastActivity"]
        check(isinstance(la, (int, float)) and not isinstance(la, bool)
              and abs(la - now) < 120000,
              "lastActivity %r is not milliseconds since the epoch" % (la,))
        seen[e["clientId"]] = e["user"]
    eq(len(seen), len(f["data"]), "duplicate clientIds in %r" % (f,))
    eq(sorted(seen), sorted(expect_users), "clients in the %s list" % kind)
    for cid, claims in expect_users.items():
        u = seen[cid]
        if claims is None:
            eq(u, None, "user of an anonymous client")
        else:
            uid = claims["sub"]
            uid = int(uid) if isinstance(uid, str) and uid.isdigit() else uid
            exp = {"userId": uid}
            if payload:
                exp["payload"] = claims
            eq(u, exp, "user of an authenticated client")


async def t_presence(url, payload, token=True):
    """Order after the 101, then every kind of change."""
    claims = {"sub": "77", "name": "Ann", "roles": ["a", "b"],
              "nested": {"k": [1, {"z": None}]}}
    a, aid = await connect_id(url)
    b = c = None
    try:
        users = {aid: None}
        check_list(await a.recv(), "addClient", users, payload)
        await a.expect_nothing("frames to a after its addClient")

        # b with a token: connected, authenticated, clientList - in order.
        if token:
            b = await connect(url + "?token=" + jwt_hs(claims, SECRET))
        else:
            b = await connect(url)
        bid = await b.hello()
        if token:
            eq(await b.recv(), {"type": "auth", "action": "authenticated",
                                "data": {"userId": 77, "message":
                                         "Authentication successful"}},
               "second frame: authenticated")
        users[bid] = claims if token else None
        check_list(await b.recv(), "addClient", users, payload)
        await b.expect_nothing("frames to b after its addClient")
        fs = await a.sync()
        eq(len(fs), 1, "one frame to a when b connected: %r" % (fs,))
        check_list(fs[0], "addClient", users, payload)

        # c anonymous
        c, cid = await connect_id(url)
        users[cid] = None
        check_list(await c.recv(), "addClient", users, payload)
        for x in (a, b):
            fs = await x.sync()
            eq(len(fs), 1, "one frame to an old client when c connected")
            check_list(fs[0], "addClient", users, payload)

        # join: everybody gets clientAddedToRoom (the joiner too).
        await c.send_json({"type": "system", "action": "joinRoom",
                           "data": {"roomName": "p"}})
        fs = await c.sync()
        replies = [f for f in fs if not is_list(f)]
        lists = [f for f in fs if is_list(f)]
        eq(len(replies), 1, "one joinRoom reply")
        eq(len(lists), 1, "one clientList frame to the joiner")
        check_list(lists[0], "clientAddedToRoom", users, payload)
        for x in (a, b):
            fs = await x.sync()
            eq(len(fs), 1, "one frame to others on join")
            check_list(fs[0], "clientAddedToRoom", users, payload)

        # metadata update: updateClient.
        await c.send_json({"type": "test", "action": "setMeta",
                           "data": {"key": "k", "value": 1}})
        fs = await c.sync()
        eq(len(fs), 2, "reply + updateClient to the updater: %r" % (fs,))
        check_list([f for f in fs if is_list(f)][0], "updateClient", users,
                   payload)
        for x in (a, b):
            fs = await x.sync()
            eq(len(fs), 1, "one frame to others on a metadata update")
            check_list(fs[0], "updateClient", users, payload)

        # leave: clientRemovedFromRoom.
        await c.send_json({"type": "system", "action": "leaveRoom",
                           "data": {"roomName": "p"}})
        fs = await c.sync()
        lists = [f for f in fs if is_list(f)]
        eq(len(lists), 1, "one clientList frame to the leaver: %r" % (fs,))
        check_list(lists[0], "clientRemovedFromRoom", users, payload)
        eq(len(fs), 3, "leftRoom + reply + clientList: %r" % (fs,))
        for x in (a, b):
            fs = await x.sync()
            eq(len(fs), 1, "one frame to others on leave")
            check_list(fs[0], "clientRemovedFromRoom", users, payload)

        # disconnect of a client in rooms: clientRemovedFromAllRooms, and
        # removeClient last, whose list no longer has it.
        for room in ("q1", "q2"):
            await b.send_json({"type": "system", "action": "joinRoom",
                               "data": {"roomName": room}})
            fs = await b.sync()
            eq(sorted(f.get("clientListType", f["action"]) for f in fs),
               ["clientAddedToRoom", "joinRoom"], "b's frames on a join")
        for x in (a, c):
            fs = await x.sync()
            eq([f["clientListType"] for f in fs],
               ["clientAddedToRoom", "clientAddedToRoom"], "two joins")
        await b.close()
        del users[bid]

        async def removed():
            fs = await a.sync()
            removed.frames += fs
            return any(f["clientListType"] == "removeClient"
                       for f in removed.frames)
        removed.frames = []
        await poll(removed, what="removeClient after b disconnected")
        kinds = [f["clientListType"] for f in removed.frames]
        check("clientRemovedFromAllRooms" in kinds,
              "no clientRemovedFromAllRooms for a client that left in "
              "rooms: %r" % kinds)
        eq(kinds[-1], "removeClient", "last kind after a disconnect "
           "(%r)" % kinds)
        check_list(removed.frames[-1], "removeClient", users, payload)
        for f in removed.frames:
            check(set(f) == {"type", "action", "clientListType", "data"},
                  "frame %r" % (f,))
        fs = await c.sync()
        eq([f["clientListType"] for f in fs], kinds, "c got the same kinds")
    finally:
        await close_all([a, b, c])


async def t_presence_coalesced(url):
    """Each connect and close used to send every client a list of every
    client: O(clients^2) bytes per cycle. With the default 250 ms
    interval the passive clients get a frame at once, then at most one
    per interval, and the last list is the truth."""
    passive = []
    try:
        for _ in range(20):
            c, cid = await connect_id(url)
            passive.append((c, cid))
        # Let the connects' lists settle, then drop what came.
        await asyncio.sleep(0.6)
        for c, _ in passive:
            await c.sync()
        t0 = time.monotonic()
        for _ in range(40):
            x, _ = await connect_id(url)
            await x.close()
        elapsed = time.monotonic() - t0
        await asyncio.sleep(0.6)  # one more interval: the trailing frame
        ids = {cid: None for _, cid in passive}
        most = int(elapsed / 0.25) + 3
        for c, _ in passive:
            fs = await c.sync()
            lists = [f for f in fs if is_list(f)]
            check(1 <= len(lists) <= most,
                  "%d clientList frames for 80 changes in %.2f s; at most "
                  "%d expected with presence.interval = 250"
                  % (len(lists), elapsed, most))
            check_list(lists[-1], "removeClient", ids)
    finally:
        await close_all([c for c, _ in passive])


async def t_presence_off(url):
    a, aid = await connect_id(url)
    b = None
    try:
        b, bid = await connect_id(url)
        await join(b, "x")
        await tk_noreply(b, "setMeta", {"key": "k", "value": 1})
        await b.close()
        await a.expect_nothing("presence frames (presence.client_list off)")
        check(aid != bid, "ids")
    finally:
        await close_all([a, b])


# ---- main -------------------------------------------------------------------

async def main():
    # Many connections from 127.0.0.1 here, some still closing.
    plain = Server(app_config(("system", "testkit", "peer"),
                              limits={"max_connections_per_ip": 0}), "plain")
    users = Server(app_config(("system", "testkit"),
                              extra='auth = { jwt = { secret = "%s"; }; };'
                                    % SECRET), "users")
    pres = Server(app_config(("system", "testkit"),
                             extra='auth = { jwt = { secret = "%s"; }; };\n'
                                   'presence = { client_list = true; '
                                   'interval = 0; };' % SECRET), "presence")
    presp = Server(app_config(("system", "testkit"),
                              extra='auth = { jwt = { secret = "%s"; }; };\n'
                                    'presence = { client_list = true; '
                                    'include_payload = true; interval = 0; };'
                                    % SECRET),
                   "presence_payload")
    presa = Server(app_config(("system", "testkit"),
                              extra="presence = { client_list = true; "
                                    "interval = 0; };"),
                   "presence_anon")
    # The default presence.interval (250 ms) coalesces.
    presc = Server(app_config(("system", "testkit"),
                              extra="presence = { client_list = true; };"),
                   "presence_coalesced")
    servers = [plain, users, presa, pres, presp, presc]
    A = tap.acase
    try:
        for s in servers:
            s.start()
        url = plain.url()
        await A("sendRoom reaches the 3 members only; after leave no longer",
                t_room, url)
        await A("sendRoom with exclude", t_room_exclude, url)
        await A("sendAll with and without exclusion", t_all_exclude, url)
        await A("sendAll with a predicate over metadata (onlyMeta)",
                t_all_predicate, url)
        await A("sendTo one client", t_send_to, url)
        await A("sendTo self: the message, then the reply",
                t_send_to_self_order, url)
        await A("metadata set by testkit is visible to peer's handler",
                t_meta_peer, url)
        await A("test/disconnect closes another client with code and reason",
                t_kick, url)
        await A("one encode per broadcast: framesEncoded +1, messagesOut +N",
                t_one_encode, url)
        await A("presence off by default: no clientList frames",
                t_presence_off, url)
        await A("1,000 connections get unique 32-lowercase-hex ids",
                t_ids_1000, url, timeout=40)
        await A("sendUsers: two connections of one user get it once each",
                t_users, users.url())
        await A("presence.client_list (anonymous clients): connected, then "
                "clientList; every kind with exact entries", t_presence,
                presa.url(), False, False)
        await A("presence.client_list: connected, authenticated, clientList;"
                " every kind with exact entries", t_presence, pres.url(),
                False)
        await A("presence.include_payload: user has userId and payload",
                t_presence, presp.url(), True)
        await A("presence.interval: 40 connect/close cycles next to 20 "
                "passive clients cost each a few frames, and the last one "
                "is right", t_presence_coalesced, presc.url(), timeout=60)
    finally:
        await astop_servers(tap, servers)


tap.run(main)
