"""
test_reload - SIGHUP (issue 14): pxl-serve reads its app file again and
applies what can change while serving, without dropping anyone.

- A new log level takes effect (debug lines appear after the reload).
- A rotated JWT secret: a client connected with the old key stays and is
  served; a new upgrade with the old key gets 401, with the new key 101.
- Plugin settings: testkit's greeting changes and its reload hook runs.
- A key that cannot change live (listen.port) is logged as needing a
  restart and keeps its running value.
- An invalid file changes nothing: its problems are logged with
  file:line, and the server serves on with the old settings.
- The command line's -o overrides apply again at the reload.
- Cluster mode (2 workers, a real redis-server): the master checks the
  file and passes the signal on; every worker takes the new secret.
"""
import asyncio
import os
import signal
import sys

sys.dont_write_bytecode = True

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from pxltest import (TAP, Server, check, eq, http_request,  # noqa: E402
                     jwt_hs, log_problems, new_key, unused_port,
                     upgrade_request, wait_until)
from pxlredis import RedisServer  # noqa: E402
from pxlws import connect_id  # noqa: E402

tap = TAP()
tap.deadline(90)

OLD, NEW = "old-secret-for-reload", "new-secret-after-reload"


def app(secret, level="info", greeting="hello", port=0, extra=""):
    return ('name = "reload";\n'
            'listen = { host = "127.0.0.1"; port = %d; };\n'
            'plugins = ( { path = "testkit"; settings = { greeting = "%s"; };'
            ' } );\n'
            'log = { level = "%s"; };\n'
            'auth = { jwt = { secret = "%s"; required = true; }; };\n%s'
            % (port, greeting, level, secret, extra))


def rewrite(srv, text):
    with open(srv.cfg, "w") as f:
        f.write(text)


def hup(srv, count=1):
    """SIGHUP, then wait for the count-th "reloaded" (or refused) line."""
    srv.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: srv.log().count("msg=\"reloaded ") +
               srv.log().count("configuration stays") >= count,
               timeout=10, what="reload %d in the log" % count)


def status(srv, secret, sub="1"):
    """The upgrade's HTTP status with a token signed with secret."""
    token = jwt_hs({"sub": sub}, secret)
    r, c = http_request(srv.port, upgrade_request(
        path="/ws?token=" + token, key=new_key()))
    c.close()
    return r.status


async def stats(c):
    await c.send_json({"type": "test", "action": "stats", "requestId": 1})
    while True:
        r = await c.recv()
        if r.get("action") == "stats":
            return r["response"]


def url(srv, secret, sub="1"):
    return srv.url() + "?token=" + jwt_hs({"sub": sub}, secret)


async def t_live():
    port = unused_port()
    srv = Server(app(OLD, port=port)).start()
    try:
        c, _ = await connect_id(url(srv, OLD))
        await c.recv()  # auth/authenticated
        eq((await stats(c))["greeting"], "hello", "greeting before")
        check("level=debug" not in srv.log(), "debug lines at level info")
        rewrite(srv, app(NEW, level="debug", greeting="bonjour",
                         port=unused_port()))
        hup(srv)
        log = srv.log()
        check("listen.port: needs a restart" in log,
              "no 'needs a restart' line for listen.port:\n" + log)
        # The client of the old key stays, and is served.
        s = await stats(c)
        eq((s["greeting"], s["reloads"]), ("bonjour", 1),
           "greeting and reload hook calls after the reload")
        eq(status(srv, OLD), 401, "a new upgrade with the old key")
        eq(status(srv, NEW), 101, "a new upgrade with the new key")
        eq(srv.port, port, "the port it listens on")
        c2, _ = await connect_id(url(srv, NEW, "2"))
        wait_until(lambda: "level=debug" in srv.log(), timeout=5,
                   what="a debug line after the reload to debug")
        await c2.close()
        await c.close()
    finally:
        srv.stop()


async def t_invalid():
    srv = Server(app(OLD)).start()
    try:
        c, _ = await connect_id(url(srv, OLD))
        rewrite(srv, app(NEW, greeting="x" * 3) +
                "limits = { max_json_depth = 0; };\nbogus = 1;\n")
        hup(srv)
        log = srv.log()
        for want in ("reload refused: %s:6: limits.max_json_depth: 0 is out "
                     "of range 1..1024" % srv.cfg,
                     "reload refused: %s:7: bogus: unknown key" % srv.cfg):
            check(want in log, "no line %r in:\n%s" % (want, log))
        await c.recv()  # auth/authenticated
        eq((await stats(c))["reloads"], 0, "reload hook calls")
        eq(status(srv, OLD), 101, "the old key after a refused reload")
        eq(status(srv, NEW), 401, "the new key after a refused reload")
        await c.close()
    finally:
        stop_refused(srv)


def stop_refused(srv):
    """stop(), but the reload-refused lines are the err lines expected."""
    srv.terminate()
    eq(srv.wait(20), 0, "exit code")
    bad = [x for x in log_problems(srv.log()) if "reload refused" not in x]
    check(not bad, "bad log lines:\n" + "\n".join(bad))


async def t_overrides():
    """-o log.level=debug stays in force at the reload, although the
    file says info."""
    srv = Server(app(OLD), args=["-o", "log.level=debug"]).start()
    try:
        rewrite(srv, app(NEW, greeting="again"))
        hup(srv)
        before = srv.log().count("level=debug")
        c, _ = await connect_id(url(srv, NEW))
        await c.close()
        wait_until(lambda: srv.log().count("level=debug") > before,
                   timeout=5, what="debug lines after the reload")
    finally:
        srv.stop()


async def t_cluster():
    redis = RedisServer().start()
    try:
        extra = "workers = 2;\nredis = { port = %d; required = true; };\n" % (
            redis.port)
        srv = Server(app(OLD, extra=extra), workers=2).start()
        try:
            rewrite(srv, app(NEW, extra=extra))
            srv.proc.send_signal(signal.SIGHUP)
            wait_until(lambda: srv.log().count('msg="reloaded ') >= 3,
                       timeout=15, what="the master and both workers "
                       "reloaded")
            # Many upgrades spread over both workers: each needs the new key.
            olds = [status(srv, OLD) for _ in range(12)]
            news = [status(srv, NEW) for _ in range(12)]
            eq((set(olds), set(news)), ({401}, {101}),
               "statuses with the old and the new key over both workers")
            workers = {line.split("worker=")[1].split()[0]
                       for line in srv.log().splitlines()
                       if 'msg="reloaded ' in line}
            eq(workers, {"master", "0", "1"}, "processes that reloaded")
            check(srv.log().count("needs a restart") == 0,
                  "a 'needs a restart' line for an unchanged key")
        finally:
            srv.stop()
    finally:
        redis.stop()


def main():
    C = tap.case
    C("SIGHUP: new log level, rotated JWT secret (old client stays, new "
      "upgrades need the new key), plugin settings and reload hook; "
      "listen.port needs a restart", lambda: asyncio.run(t_live()))
    C("SIGHUP with an invalid file: problems logged with file:line, the "
      "old settings stay", lambda: asyncio.run(t_invalid()))
    C("SIGHUP keeps the command line's -o overrides",
      lambda: asyncio.run(t_overrides()))
    C("SIGHUP in cluster mode: master and both workers reload, every "
      "worker takes the new key", lambda: asyncio.run(t_cluster()))


tap.run(main)
