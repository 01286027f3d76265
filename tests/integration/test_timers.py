"""
test_timers - the timers of pxl.h (ABI 1.5) through tests/plugins/timers:
a one-shot timer runs once, no sooner than its delay, and never inside the
call that armed it; a repeating one runs until cancelled, from a route or
from its own callback; a cancelled one-shot never runs; a callback gets
the plugin's ctx without a client; a timer armed in init ticks. The
plugin's fini leaves its timers armed: pxl frees them, which the server's
exit under LeakSanitizer (a clean log, Server.stop) checks.

Lower bounds are strict but for one tick of the loop's clock: libevent
reads CLOCK_MONOTONIC_COARSE, which lags by up to a kernel tick (4 ms at
HZ=250, 10 ms at HZ=100). Upper bounds are loose.
"""
import asyncio
import os
import sys
import time

sys.dont_write_bytecode = True

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from pxltest import (TAP, Server, app_config, check, eq,  # noqa: E402
                     astop_servers, load_slack)
from pxlws import connect, poll, reply  # noqa: E402

tap = TAP()
tap.deadline(90)

TICK = 0.010  # the loop clock's lag, at most (see above)


def fired(f, tid):
    """f is a timer/fired frame of timer tid: its data."""
    check(isinstance(f, dict) and f.get("type") == "timer"
          and f.get("action") == "fired", "not a timer/fired frame: %r"
          % (f,))
    d = f["data"]
    eq(d["id"], tid, "timer id")
    eq(d["hasClient"], False, "the callback's ctx has a client")
    eq(d["pluginData"], True, "the callback's ctx is the plugin's")
    return d


async def arm(c, action, data):
    r = await c.request("timer", action, data)
    check(r.get("response") is not None and "id" in r["response"],
          "timer/%s did not answer with an id: %r" % (action, r))
    return r["response"]["id"]


async def t_one_shot(c):
    ms = 300
    t0 = time.monotonic()
    tid = await arm(c, "after", {"ms": ms})
    d = fired(await c.recv(timeout=10), tid)
    took = time.monotonic() - t0
    eq(d["run"], 1, "run")
    check(took >= ms / 1000 - TICK, "ran after %.3f s, armed for %d ms"
          % (took, ms))
    check(d["elapsedMs"] >= ms - TICK * 1000, "the plugin saw it run after "
          "%.1f ms, armed for %d ms" % (d["elapsedMs"], ms))
    check(took < ms / 1000 + 2 + load_slack(10, 5), "ran only after %.3f s"
          % took)
    await asyncio.sleep(0.4)  # a second run would come in this time
    await c.expect_nothing("runs of a one-shot timer after its first")


async def t_not_inside(c):
    # With 0 ms the run comes on the next turn of the loop: after the
    # reply of the handler that armed it, never inside it.
    await c.send_json({"type": "timer", "action": "after", "data": {"ms": 0}})
    first = await c.recv()
    check(first.get("type") == "timer" and first.get("action") == "after"
          and "response" in first, "the reply did not come before the run:"
          " %r" % (first,))
    fired(await c.recv(), first["response"]["id"])
    await c.expect_nothing()


async def t_repeating(c):
    ms = 50
    t0 = time.monotonic()
    tid = await arm(c, "every", {"ms": ms})
    for n in range(1, 4):
        d = fired(await c.recv(), tid)
        eq(d["run"], n, "run")
        check(time.monotonic() - t0 >= n * ms / 1000 - TICK,
              "run %d came after %.3f s" % (n, time.monotonic() - t0))
    # Runs may come before the reply to the cancel, none after it.
    await c.send_json({"type": "timer", "action": "cancel",
                       "data": {"id": tid}})
    while True:
        f = await c.recv()
        if f.get("action") == "cancel":
            eq(f, reply("timer", "cancel", True), "cancel reply")
            break
        fired(f, tid)
    await asyncio.sleep(0.3)
    await c.expect_nothing("runs after the timer was cancelled")
    eq(await c.request("timer", "cancel", {"id": tid}),
       reply("timer", "cancel", False), "cancelling it again")


async def t_cancelled_one_shot(c):
    tid = await arm(c, "after", {"ms": 200})
    eq(await c.request("timer", "cancel", {"id": tid}),
       reply("timer", "cancel", True), "cancel reply")
    await asyncio.sleep(0.5)
    await c.expect_nothing("the run of a cancelled one-shot timer")


async def t_cancel_inside_one_shot(c):
    tid = await arm(c, "after", {"ms": 30, "cancelInside": True})
    eq(fired(await c.recv(), tid)["run"], 1, "run")
    await asyncio.sleep(0.2)
    await c.expect_nothing()


async def t_cancel_inside_repeating(c):
    tid = await arm(c, "every", {"ms": 30, "cancelAt": 3})
    for n in range(1, 4):
        eq(fired(await c.recv(), tid)["run"], n, "run")
    await asyncio.sleep(0.3)
    await c.expect_nothing("runs after the callback cancelled its timer")


async def t_ticker(c):
    first = (await c.request("timer", "ticks"))["response"]

    async def more():
        return (await c.request("timer", "ticks"))["response"] >= first + 3
    await poll(more, timeout=10, what="the timer armed in init to tick")


async def t_client_gone(url):
    # A timer that sends to a client that has left: nothing breaks.
    c = await connect(url)
    await c.hello()
    await arm(c, "after", {"ms": 50})
    await c.close()
    await asyncio.sleep(0.2)


async def t_left_armed(c):
    # Left for shutdown: fini does not cancel them, pxl frees them.
    for action in ("after", "every"):
        for _ in range(3):
            await arm(c, action, {"ms": 60000})


async def main():
    srv = Server(app_config(plugins=("testkit", "timers")))
    if tap.case("pxl-serve starts with the timers plugin", srv.start):
        c = await connect(srv.url())
        await c.hello()
        for name, fn in (
                ("a one-shot timer runs once, no sooner than its delay",
                 t_one_shot),
                ("a timer never runs inside the call that armed it",
                 t_not_inside),
                ("a repeating timer runs until cancelled", t_repeating),
                ("a cancelled one-shot timer never runs",
                 t_cancelled_one_shot),
                ("a one-shot timer may cancel itself in its callback",
                 t_cancel_inside_one_shot),
                ("a repeating timer cancelled in its callback stops",
                 t_cancel_inside_repeating),
                ("a repeating timer armed in init ticks", t_ticker),
                ("timers left armed at shutdown", t_left_armed)):
            await tap.acase(name, fn, c)
        await tap.acase("a timer's client has left", t_client_gone,
                        srv.url())
        await c.close()
    # Exit 0 and a clean log: no leak of the timers fini left armed.
    await astop_servers(tap, [srv], name="%s exits 0, clean log (timers freed)")


if __name__ == "__main__":
    tap.run(main)
