"""
test_rooms - the bundled system plugin's room routes through a real
pxl-serve with python3-websockets: exact joinRoom / leaveRoom / listRooms /
roomMembers replies (PROTOCOL.md "System routes"), defaults, the room name
checks in order, the per-client room limit, single-room mode, member
visibility, member notifications, cleanup on disconnect and empty rooms.
"""
import asyncio
import datetime
import os
import re
import sys
import time

sys.dont_write_bytecode = True

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from pxltest import (TAP, Server, app_config, astop_servers,  # noqa: E402
                     check, eq, jwt_hs, loads)
from pxlws import MISSING, close_all, connect_id, poll  # noqa: E402

tap = TAP()
tap.deadline(60)

ISO_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
REQUIRED = "Room name is required"
INVALID = "Invalid room name"
TOO_LONG = "Room name is too long"
SECRET = "rooms-test-secret"

ROUTES = ("joinRoom", "leaveRoom", "roomMembers")


# ---- helpers ----------------------------------------------------------------

def check_ts(ts, what):
    check(isinstance(ts, str) and ISO_RE.match(ts),
          "%s %r is not YYYY-MM-DDTHH:MM:SS.mmmZ" % (what, ts))
    t = datetime.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()
    check(abs(t - time.time()) < 60, "%s %r is not now in UTC" % (what, ts))


async def call(c, action, data=MISSING, rid=MISSING):
    """Send system/<action>; return the reply's response (exact envelope)."""
    msg = {"type": "system", "action": action}
    if data is not MISSING:
        msg["data"] = data
    if rid is not MISSING:
        msg["requestId"] = rid
    await c.send_json(msg)
    r = await c.recv()
    return unwrap(r, action, rid)


def unwrap(r, action, rid=MISSING):
    keys = {"type", "action", "response"}
    if rid is not MISSING:
        keys.add("requestId")
    check(isinstance(r, dict) and set(r) == keys and r["type"] == "system"
          and r["action"] == action,
          "expected the system/%s reply with keys %s, got %r"
          % (action, sorted(keys), r))
    if rid is not MISSING:
        eq(r["requestId"], rid, "requestId")
    return r["response"]


def join_ok(resp, room, uid, cid, utype="user", uname=None):
    check(isinstance(resp, dict), "response is not an object: %r" % (resp,))
    eq(sorted(resp), ["data", "message", "success"], "joinRoom response keys"
       " (response %r)" % (resp,))
    eq(resp["success"], True, "success")
    eq(resp["message"], "Successfully joined room: " + room, "message")
    d = resp["data"]
    eq(sorted(d), ["joinedAt", "roomName", "userId", "userType", "username"],
       "joinRoom data keys")
    check_ts(d["joinedAt"], "joinedAt")
    exp = {"userId": uid, "userType": utype,
           "username": uname if uname is not None else "user_" + cid[:8],
           "roomName": room}
    got = dict(d)
    del got["joinedAt"]
    eq(got, exp, "joinRoom data")
    eq(type(d["userId"]), type(uid), "userId JSON type")


def refused(resp, error, cid):
    eq(resp, {"success": False, "error": error, "clientId": cid},
       "refusal")


async def join(c, room, cid, uid=None, **fields):
    data = {"roomName": room}
    data.update(fields)
    resp = await call(c, "joinRoom", data)
    join_ok(resp, room, cid if uid is None else uid, cid)
    return resp


def leave_ok(resp, room, cid):
    check(isinstance(resp, dict), "response is not an object: %r" % (resp,))
    eq(sorted(resp), ["clientId", "data", "message", "success"],
       "leaveRoom response keys (response %r)" % (resp,))
    eq(resp["success"], True, "success")
    eq(resp["message"], "Successfully left room: " + room, "message")
    eq(resp["clientId"], cid, "clientId")
    eq(sorted(resp["data"]), ["leftAt", "roomName"], "leaveRoom data keys")
    eq(resp["data"]["roomName"], room, "data.roomName")
    check_ts(resp["data"]["leftAt"], "leftAt")


def left_frame(room):
    return {"type": "user", "action": "leftRoom", "data": {"roomName": room}}


async def leave_member(c, room, cid):
    """leaveRoom as a member: the leftRoom frame, then the reply."""
    await c.send_json({"type": "system", "action": "leaveRoom",
                       "data": {"roomName": room}})
    eq(await c.recv(), left_frame(room), "first frame after leaveRoom")
    leave_ok(unwrap(await c.recv(), "leaveRoom"), room, cid)


async def rooms_of(c):
    resp = await call(c, "listRooms")
    check(isinstance(resp, dict) and list(resp) == ["rooms"]
          and isinstance(resp["rooms"], list),
          'listRooms response is not {"rooms":[...]}: %r' % (resp,))
    return resp["rooms"]


async def members(c, room):
    """roomMembers as a sorted list of (clientId, userId)."""
    resp = await call(c, "roomMembers", {"roomName": room})
    check(isinstance(resp, dict) and sorted(resp) == ["members", "roomName"],
          "roomMembers response keys: %r" % (resp,))
    eq(resp["roomName"], room, "roomName")
    out = []
    for m in resp["members"]:
        check(isinstance(m, dict) and sorted(m) == ["clientId", "userId"],
              "member entry %r does not have exactly clientId, userId" % (m,))
        out.append((m["clientId"], m["userId"]))
    return sorted(out, key=repr)


async def whoami(c):
    await c.send_json({"type": "test", "action": "whoami"})
    r = await c.recv()
    eq(sorted(r), ["action", "response", "type"], "whoami reply keys")
    return r["response"]


async def alone(c):
    """Wait until c is the only client of its server."""
    async def one():
        return (await whoami(c))["clients"] == 1
    await poll(one, what="the other clients to be gone")


# ---- default app ------------------------------------------------------------

async def t_join_defaults(url):
    c, cid = await connect_id(url)
    try:
        resp = await call(c, "joinRoom", {"roomName": "lobby"})
        join_ok(resp, "lobby", cid, cid)
        eq(resp["data"]["username"], "user_" + cid[:8], "default username")
        eq(await rooms_of(c), ["lobby"], "listRooms")
        eq(await members(c, "lobby"), [(cid, cid)], "roomMembers")
        await c.expect_nothing("frames after joinRoom")
    finally:
        await c.close()


async def t_join_rid(url):
    c, cid = await connect_id(url)
    try:
        resp = await call(c, "joinRoom", {"roomName": "r"}, rid="j1")
        join_ok(resp, "r", cid, cid)
        resp = await call(c, "joinRoom", {}, rid=7)
        refused(resp, REQUIRED, cid)
    finally:
        await c.close()


async def t_join_given(url):
    a, aid = await connect_id(url)
    b, bid = await connect_id(url)
    c, cid = await connect_id(url)
    try:
        r = await call(a, "joinRoom", {"roomName": "given", "userId": "u-7",
                                       "userType": "admin",
                                       "username": "Alice"})
        join_ok(r, "given", "u-7", aid, "admin", "Alice")
        r = await call(b, "joinRoom", {"roomName": "given", "userId": 42,
                                       "userType": "", "username": ""})
        join_ok(r, "given", 42, bid, "", "")
        r = await call(c, "joinRoom", {"roomName": "given", "userId": 4.5,
                                       "userType": 5, "username": None})
        join_ok(r, "given", 4.5, cid)
        eq(await members(a, "given"),
           sorted([(aid, "u-7"), (bid, 42), (cid, 4.5)], key=repr),
           "roomMembers shows the userIds given")
    finally:
        await close_all([a, b, c])


async def t_join_big_userid(url):
    """A number is used as given, also an integer beyond 64 bits."""
    c, cid = await connect_id(url)
    try:
        for room, text, value in (
                ("big1", "12345678901234567890123", 12345678901234567890123),
                ("big2", "-98765432109876543210", -98765432109876543210)):
            await c.send('{"type":"system","action":"joinRoom","data":'
                         '{"roomName":"%s","userId":%s}}' % (room, text))
            raw = await c.recv_raw()
            join_ok(unwrap(loads(raw), "joinRoom"), room, value, cid)
            check('"userId":%s,' % text in raw,
                  "userId %s not given back as sent: %r" % (text, raw))
            eq(await members(c, room), [(cid, value)], "roomMembers userId")
    finally:
        await c.close()


async def t_join_nonstring_fields(url):
    c, cid = await connect_id(url)
    try:
        r = await call(c, "joinRoom", {"roomName": "nf", "userType": ["x"],
                                       "username": {"n": 1}})
        join_ok(r, "nf", cid, cid)
        r = await call(c, "joinRoom", {"roomName": "nf2", "userType": True,
                                       "username": 12})
        join_ok(r, "nf2", cid, cid)
    finally:
        await c.close()


async def t_rejoin(url):
    a, aid = await connect_id(url)
    b, bid = await connect_id(url)
    try:
        await join(a, "again", aid)
        await join(b, "again", bid)
        await join(a, "again", aid)
        await a.expect_nothing("frames after a rejoin")
        await b.expect_nothing("frames to another member after a rejoin")
        eq(await members(b, "again"), sorted([(aid, aid), (bid, bid)],
                                             key=repr),
           "no duplicate membership")
        eq(await rooms_of(a), ["again"], "listRooms after a rejoin")
    finally:
        await close_all([a, b])


async def t_leave_member(url):
    c, cid = await connect_id(url)
    try:
        await join(c, "exit", cid)
        await leave_member(c, "exit", cid)
        await c.expect_nothing("frames after the leaveRoom reply")
        eq(await rooms_of(c), [], "listRooms after leaving")
        eq(await members(c, "exit"), [], "roomMembers after leaving")
    finally:
        await c.close()


async def t_leave_not_member(url):
    a, aid = await connect_id(url)
    b, bid = await connect_id(url)
    try:
        # A room that exists (b is in it) and one that does not.
        await join(b, "other", bid)
        for room in ("other", "nowhere"):
            resp = await call(a, "leaveRoom", {"roomName": room}, rid=room)
            leave_ok(resp, room, aid)
        await a.expect_nothing("frames after leaving a room one is not in")
        eq(await members(a, "other"), [(bid, bid)], "b still a member")
        await b.expect_nothing("frames to b")
    finally:
        await close_all([a, b])


def name_cases(max_len):
    """(data, error) pairs, in the order of the checks."""
    cases = [
        (MISSING, REQUIRED), (None, REQUIRED), ("room", REQUIRED),
        (["room"], REQUIRED), (5, REQUIRED), (True, REQUIRED), ({}, REQUIRED),
        ({"name": "room"}, REQUIRED),
        ({"roomName": ""}, REQUIRED), ({"roomName": 5}, REQUIRED),
        ({"roomName": None}, REQUIRED), ({"roomName": ["r"]}, REQUIRED),
        ({"roomName": {"r": 1}}, REQUIRED), ({"roomName": True}, REQUIRED),
        ({"roomName": 0}, REQUIRED),
        ({"roomName": "a\u0000b"}, INVALID), ({"roomName": "\u0000"}, INVALID),
        ({"roomName": "ab\u0000"}, INVALID),
        # invalid is checked before too long
        ({"roomName": "\u0000" + "x" * (max_len + 10)}, INVALID),
        ({"roomName": "x" * (max_len + 1)}, TOO_LONG),
        ({"roomName": "x" * (max_len * 4)}, TOO_LONG),
        # bytes, not characters
        ({"roomName": "\u00e9" * (max_len // 2 + 1)}, TOO_LONG),
        ({"roomName": "\u20ac" * (max_len // 3 + 1)}, TOO_LONG),
    ]
    return cases


async def t_name_errors(url, route, max_len):
    c, cid = await connect_id(url)
    try:
        for data, error in name_cases(max_len):
            resp = await call(c, route, data)
            check(resp == {"success": False, "error": error,
                           "clientId": cid},
                  "system/%s with data %r:\n  got:      %r\n  expected: %r"
                  % (route, data if data is not MISSING else "(missing)",
                     resp, {"success": False, "error": error,
                            "clientId": cid}))
        eq(await rooms_of(c), [], "no room joined by a refused request")
        await c.expect_nothing("frames after the refusals")
    finally:
        await c.close()


async def t_name_max_ok(url, max_len):
    c, cid = await connect_id(url)
    try:
        names = ["x" * max_len, "\u00e9" * (max_len // 2),
                 "y" * (max_len - 1)]
        if max_len % 3 == 0:
            names.append("\u20ac" * (max_len // 3))
        for n in names:
            await join(c, n, cid)
        eq(await rooms_of(c), names, "rooms of exactly max bytes joined")
        for n in names:
            eq(await members(c, n), [(cid, cid)], "roomMembers of %r" % n)
            await leave_member(c, n, cid)
    finally:
        await c.close()


async def t_list_order(url):
    c, cid = await connect_id(url)
    try:
        eq(await rooms_of(c), [], "listRooms of a new client")
        for r in ("b", "a", "c", "\u00e9t\u00e9", "A"):
            await join(c, r, cid)
        eq(await rooms_of(c), ["b", "a", "c", "\u00e9t\u00e9", "A"],
           "listRooms in join order")
        await leave_member(c, "a", cid)
        eq(await rooms_of(c), ["b", "c", "\u00e9t\u00e9", "A"],
           "listRooms after leaving a")
        await join(c, "a", cid)
        eq(await rooms_of(c), ["b", "c", "\u00e9t\u00e9", "A", "a"],
           "a rejoined goes last")
        await join(c, "b", cid)
        eq(await rooms_of(c), ["b", "c", "\u00e9t\u00e9", "A", "a"],
           "rejoining b keeps its place")
        resp = await call(c, "listRooms", rid="L")
        eq(resp, {"rooms": ["b", "c", "\u00e9t\u00e9", "A", "a"]},
           "listRooms with a requestId")
    finally:
        await c.close()


async def t_members(url):
    a, aid = await connect_id(url)
    b, bid = await connect_id(url)
    c, cid = await connect_id(url)
    try:
        await join(a, "m", aid)
        await join(b, "m", bid)
        await join(c, "elsewhere", cid)
        resp = await call(c, "roomMembers", {"roomName": "m"})
        eq(sorted(resp), ["members", "roomName"], "roomMembers keys")
        got = sorted(resp["members"], key=lambda m: m["clientId"])
        eq(got, sorted([{"clientId": aid, "userId": aid},
                        {"clientId": bid, "userId": bid}],
                       key=lambda m: m["clientId"]),
           "members of m (asked by a non-member)")
        eq(await call(c, "roomMembers", {"roomName": "unknown-room"}),
           {"roomName": "unknown-room", "members": []}, "unknown room")
    finally:
        await close_all([a, b, c])


async def t_case_sensitive(url):
    a, aid = await connect_id(url)
    b, bid = await connect_id(url)
    try:
        await join(a, "Room", aid)
        await join(b, "room", bid)
        eq(await members(a, "Room"), [(aid, aid)], "members of Room")
        eq(await members(a, "room"), [(bid, bid)], "members of room")
        eq(await members(a, "ROOM"), [], "members of ROOM")
        resp = await call(a, "leaveRoom", {"roomName": "ROOM"})
        leave_ok(resp, "ROOM", aid)
        await a.expect_nothing("frames after leaving ROOM")
        eq(await rooms_of(a), ["Room"], "a is still in Room")
    finally:
        await close_all([a, b])


async def t_disconnect_cleans(url):
    a, aid = await connect_id(url)
    b, bid = await connect_id(url)
    try:
        await join(a, "d1", aid)
        await join(a, "d2", aid)
        await join(a, "d3", aid)
        await join(b, "d1", bid)
        await a.close()

        async def gone():
            return (await members(b, "d1")) == [(bid, bid)]
        await poll(gone, what="a to leave d1 after its disconnect")
        eq(await members(b, "d2"), [], "d2 after a disconnected")
        eq(await members(b, "d3"), [], "d3 after a disconnected")
    finally:
        await close_all([a, b])


async def t_abrupt_disconnect(srv):
    from pxltest import RawWS
    b, bid = await connect_id(srv.url())
    raw = RawWS(srv.port)
    try:
        raw.handshake()
        raw.send_frame(1, '{"type":"system","action":"joinRoom",'
                       '"data":{"roomName":"abrupt"}}')
        _, _, op, payload = await asyncio.to_thread(raw.recv_frame)
        eq(op, 1, "reply opcode")
        check(raw.connected is not None, "no system/connected frame")
        rid = raw.connected["data"]["clientId"]
        eq(len(await members(b, "abrupt")), 1, "raw client joined")
        raw.close()  # TCP gone, no close frame

        async def gone():
            return (await members(b, "abrupt")) == []
        await poll(gone, what="the dropped client to leave its room")
        check(rid != bid, "two clients, one id")
    finally:
        raw.close()
        await b.close()


async def t_empty_room_disappears(url):
    c, cid = await connect_id(url)
    x = None
    try:
        await alone(c)
        base = (await whoami(c))["rooms"]
        x, xid = await connect_id(url)
        await join(x, "gone-1", xid)
        await join(x, "gone-2", xid)
        await join(c, "gone-2", cid)
        eq((await whoami(c))["rooms"], base + 2, "rooms after two joins")
        await leave_member(x, "gone-1", xid)
        eq((await whoami(c))["rooms"], base + 1,
           "rooms after the last member left gone-1")
        await x.close()
        eq((await whoami(c))["rooms"], base + 1,
           "gone-2 still has a member")
        await leave_member(c, "gone-2", cid)
        eq((await whoami(c))["rooms"], base, "rooms after gone-2 emptied")
        x2, x2id = await connect_id(url)
        try:
            await join(x2, "gone-3", x2id)
            eq((await whoami(c))["rooms"], base + 1, "rooms with gone-3")
            await x2.close()

            async def empty():
                return (await whoami(c))["rooms"] == base
            await poll(empty, what="gone-3 to disappear after the "
                       "disconnect of its only member")
        finally:
            await x2.close()
    finally:
        await close_all([c, x])


async def t_room_garbage(url):
    """Odd but valid names: punctuation, JSON-looking, long UTF-8."""
    c, cid = await connect_id(url)
    try:
        names = ["room:with:special-chars_123", '{"a":1}', "a b\tc\n",
                 "\U0001F600", "\\", "/", "%00"]
        for n in names:
            await join(c, n, cid)
        eq(await rooms_of(c), names, "odd names listed as given")
    finally:
        await c.close()


async def run_default(srv):
    url = srv.url()
    A = tap.acase
    await A("joinRoom defaults: userId = clientId, userType user, username "
            "user_ + 8 chars, joinedAt ISO ms Z", t_join_defaults, url)
    await A("joinRoom reply and refusal echo requestId", t_join_rid, url)
    await A("joinRoom with userId (string, integer, non-integer), userType, "
            "username used as given", t_join_given, url)
    await A("joinRoom with an integer userId beyond 64 bits: used as given",
            t_join_big_userid, url)
    await A("joinRoom with non-string userType/username: defaults",
            t_join_nonstring_fields, url)
    await A("rejoin: same success, no duplicate member, nothing else sent",
            t_rejoin, url)
    await A("leaveRoom as a member: leftRoom frame, then the reply",
            t_leave_member, url)
    await A("leaveRoom when not a member: the reply only",
            t_leave_not_member, url)
    for route in ROUTES:
        await A("system/%s: name checks in order (required, invalid, too "
                "long at 128 bytes)" % route, t_name_errors, url, route, 128)
    await A("room names of exactly 128 bytes (also multibyte) are accepted",
            t_name_max_ok, url, 128)
    await A("listRooms in join order", t_list_order, url)
    await A("roomMembers: clientId/userId list, [] for an unknown room",
            t_members, url)
    await A("room names are case-sensitive", t_case_sensitive, url)
    await A("disconnect removes a client from all its rooms",
            t_disconnect_cleans, url)
    await A("a dropped TCP connection removes the client from its rooms",
            t_abrupt_disconnect, srv)
    await A("an empty room disappears (leave and disconnect)",
            t_empty_room_disappears, url)
    await A("odd room names are plain byte strings", t_room_garbage, url)


# ---- limits, visibility, notifications --------------------------------------

async def t_too_many(url):
    c, cid = await connect_id(url)
    try:
        for r in ("l1", "l2", "l3"):
            await join(c, r, cid)
        for room in ("l4", "l5"):
            refused(await call(c, "joinRoom", {"roomName": room}),
                    "Too many rooms", cid)
        await join(c, "l2", cid)  # rejoin at the limit
        eq(await rooms_of(c), ["l1", "l2", "l3"], "rooms at the limit")
        # members_visible_to = "members" here: not being one shows it.
        refused(await call(c, "roomMembers", {"roomName": "l4"}),
                "Not a member", cid)
        await leave_member(c, "l1", cid)
        await join(c, "l4", cid)
        eq(await rooms_of(c), ["l2", "l3", "l4"], "rooms after leave + join")
        await c.expect_nothing("frames")
    finally:
        await c.close()


async def t_visible_to_members(url):
    a, aid = await connect_id(url)
    b, bid = await connect_id(url)
    try:
        await join(a, "secret", aid)
        eq(await members(a, "secret"), [(aid, aid)], "a member asks")
        refused(await call(b, "roomMembers", {"roomName": "secret"}),
                "Not a member", bid)
        refused(await call(b, "roomMembers", {"roomName": "no-such-room"}),
                "Not a member", bid)
        refused(await call(b, "roomMembers", {"roomName": ""}), REQUIRED, bid)
        await join(b, "secret", bid)
        eq(await members(b, "secret"), sorted([(aid, aid), (bid, bid)],
                                              key=repr),
           "b asks after joining")
    finally:
        await close_all([a, b])


def note(kind, room, cid, uid):
    return {"type": "system", "action": kind,
            "data": {"roomName": room, "clientId": cid, "userId": uid}}


async def t_notify(url):
    a, aid = await connect_id(url)
    b, bid = await connect_id(url)
    c, cid = await connect_id(url)
    o, oid = await connect_id(url)
    try:
        await join(a, "n", aid)
        await join(o, "n-other", oid)
        # b joins: a (a member) is told, b (the joiner) is not.
        await join(b, "n", bid)
        eq(await a.sync(), [note("clientJoined", "n", bid, bid)],
           "a's frames after b joined")
        await b.expect_nothing("frames to the joiner")
        # c joins with a userId of its own: the others see that userId.
        r = await call(c, "joinRoom", {"roomName": "n", "userId": 99})
        join_ok(r, "n", 99, cid)
        eq(await a.sync(), [note("clientJoined", "n", cid, 99)],
           "a's frames after c joined")
        eq(await b.sync(), [note("clientJoined", "n", cid, 99)],
           "b's frames after c joined")
        await c.expect_nothing("frames to the joiner c")
        # A rejoin tells nobody.
        await join(b, "n", bid)
        await a.expect_nothing("frames to a after b rejoined")
        await c.expect_nothing("frames to c after b rejoined")
        # b leaves: a and c are told, b gets only leftRoom + reply.
        await leave_member(b, "n", bid)
        await b.expect_nothing("frames to the leaver")
        eq(await a.sync(), [note("clientLeft", "n", bid, bid)],
           "a's frames after b left")
        eq(await c.sync(), [note("clientLeft", "n", bid, bid)],
           "c's frames after b left")
        # Leaving a room one is not in tells nobody.
        leave_ok(await call(b, "leaveRoom", {"roomName": "n"}), "n", bid)
        await a.expect_nothing("frames to a after a non-member left")
        # c leaves: its userId is the one it joined with.
        await leave_member(c, "n", cid)
        eq(await a.sync(), [note("clientLeft", "n", cid, 99)],
           "a's frames after c left")
        await o.expect_nothing("frames to a client in another room")
    finally:
        await close_all([a, b, c, o])


async def run_limits(srv):
    url = srv.url()
    A = tap.acase
    for route in ROUTES:
        await A("rooms.max_name_length = 16: system/%s name checks" % route,
                t_name_errors, url, route, 16)
    await A("rooms.max_name_length = 16: exactly 16 bytes accepted",
            t_name_max_ok, url, 16)
    await A("rooms.max_per_client = 3: Too many rooms; rejoin at the limit "
            "succeeds", t_too_many, url)
    await A('rooms.members_visible_to = "members": non-members get '
            '"Not a member"', t_visible_to_members, url)
    await A("rooms.notify_members: others get clientJoined/clientLeft, the "
            "joiner/leaver does not", t_notify, url)


# ---- single-room mode -------------------------------------------------------

async def t_single(url):
    a, aid = await connect_id(url)
    b, bid = await connect_id(url)
    try:
        await join(a, "A", aid)
        await join(b, "A", bid)
        eq(await a.sync(), [note("clientJoined", "A", bid, bid)],
           "a hears of b (notify_members)")
        await a.send_json({"type": "system", "action": "joinRoom",
                           "data": {"roomName": "B"}})
        eq(await a.recv(), left_frame("A"), "leftRoom A comes first")
        join_ok(unwrap(await a.recv(), "joinRoom"), "B", aid, aid)
        await a.expect_nothing("frames after joining B")
        eq(await b.sync(), [note("clientLeft", "A", aid, aid)],
           "the other member of A hears that a left it")
        eq(await rooms_of(a), ["B"], "listRooms in single-room mode")
        eq(await members(b, "A"), [(bid, bid)], "a left A")
        eq(await members(b, "B"), [(aid, aid)], "a is in B")
        # Rejoining the current room: no leftRoom.
        await join(a, "B", aid)
        await a.expect_nothing("frames after rejoining B")
        eq(await rooms_of(a), ["B"], "still only B")
        # Leaving, then joining: nothing to leave first.
        await leave_member(a, "B", aid)
        await join(a, "C", aid)
        await a.expect_nothing("frames after joining C from no room")
        eq(await rooms_of(a), ["C"], "only C")
        await b.expect_nothing("frames to b")
    finally:
        await close_all([a, b])


async def t_single_many(url):
    """Room limit does not apply in single-room mode: always one room."""
    c, cid = await connect_id(url)
    try:
        prev = None
        for i in range(6):
            room = "s%d" % i
            await c.send_json({"type": "system", "action": "joinRoom",
                               "data": {"roomName": room}})
            if prev is not None:
                eq(await c.recv(), left_frame(prev), "leftRoom " + prev)
            join_ok(unwrap(await c.recv(), "joinRoom"), room, cid, cid)
            prev = room
        eq(await rooms_of(c), ["s5"], "one room")
    finally:
        await c.close()


async def run_single(srv):
    url = srv.url()
    A = tap.acase
    await A("rooms.multiple = false: joining B while in A sends leftRoom A, "
            "then success (others in A get clientLeft); rejoining sends no "
            "leftRoom", t_single, url)
    await A("rooms.multiple = false: a series of joins keeps one room",
            t_single_many, url)


# ---- authenticated clients --------------------------------------------------

async def t_token_user(url):
    tok42 = jwt_hs({"sub": "42"}, SECRET)
    tokabc = jwt_hs({"sub": "abc"}, SECRET)
    a, aid = await connect_id(url + "?token=" + tok42)
    b, bid = await connect_id(url + "?token=" + tokabc)
    try:
        for c, uid in ((a, 42), (b, "abc")):
            eq(await c.recv(), {"type": "auth", "action": "authenticated",
                                "data": {"userId": uid, "message":
                                         "Authentication successful"}},
               "authenticated frame")
        join_ok(await call(a, "joinRoom", {"roomName": "t"}), "t", 42, aid)
        join_ok(await call(b, "joinRoom", {"roomName": "t"}), "t", "abc",
                bid)
        r = await call(a, "joinRoom", {"roomName": "t2", "userId": "mine"})
        join_ok(r, "t2", "mine", aid)
        eq(await members(a, "t"), sorted([(aid, 42), (bid, "abc")],
                                         key=repr),
           "roomMembers shows the token userIds")
    finally:
        await close_all([a, b])


# ---- main -------------------------------------------------------------------

async def main():
    default = Server(app_config(("system", "testkit")), "default")
    limits = Server(app_config(
        ("system", "testkit"),
        extra='rooms = { max_name_length = 16; max_per_client = 3; '
              'notify_members = true; members_visible_to = "members"; };'),
        "limits")
    single = Server(app_config(("system", "testkit"),
                               extra="rooms = { multiple = false; "
                                     "max_per_client = 3; "
                                     "notify_members = true; };"), "single")
    auth = Server(app_config(("system", "testkit"),
                             extra='auth = { jwt = { secret = "%s"; }; };'
                                   % SECRET), "auth")
    servers = [default, limits, single, auth]
    try:
        for s in servers:
            s.start()
        await run_default(default)
        await run_limits(limits)
        await run_single(single)
        await tap.acase("joinRoom default userId is the token's userId "
                        "(42 and \"abc\")", t_token_user, auth.url())
    finally:
        await astop_servers(tap, servers)


tap.run(main)
