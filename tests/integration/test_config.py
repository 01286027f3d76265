"""
test_config - the pxl-serve command line: -t on good and broken app files
(exact "file:line: key: text" lines), bad plugins (exact refusals naming
the plugin's path), a plugin whose init fails, and -h, -V, -T and usage.
Plugin settings (ABI 1.2): checked at -t like the app file's keys, a bad
settings table refused by the plugin's path, the values and defaults a
running plugin reads, and an ABI 1.1 plugin that loads with its settings
group unchecked.
"""
import asyncio
import os
import re
import socket
import sys

sys.dont_write_bytecode = True

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from pxltest import (TAP, Server, app_config, check, eq,  # noqa: E402
                     log_problems, plugin_file, run_serve, test_plugin,
                     tmpdir)
from pxlws import connect, reply  # noqa: E402

tap = TAP()
tap.deadline(60)

LISTEN = 'listen = { host = "127.0.0.1"; port = 0; };'


def write(text, name="app.cfg"):
    d = tmpdir()
    path = os.path.join(d, name)
    with open(path, "w") as f:
        f.write(text)
    return d, path


def clean(stderr):
    bad = log_problems(stderr)
    check(not bad, "error or sanitizer lines on stderr:\n" + "\n".join(bad))


def abi():
    rc, out, err = run_serve(["-V"])
    m = re.search(r"plugin ABI (\d+)\.(\d+)", out)
    check(rc == 0 and m, "pxl-serve -V: rc %r, %r" % (rc, out))
    return int(m.group(1)), int(m.group(2))


def check_ok(text, nplugins, cwd_name=False, setup=None):
    d, path = write(text)
    if setup:
        setup(d)
    arg = "app.cfg" if cwd_name else path
    # From another directory too: relative plugin paths follow the app file.
    rc, out, err = run_serve(["-t", arg], cwd=d if cwd_name else "/")
    eq((rc, out), (0, "%s: ok (%d plugin%s)\n"
                   % (arg, nplugins, "" if nplugins == 1 else "s")),
       "(exit code, stdout) with stderr %r" % err)
    clean(err)


def check_refused(text, expected, cwd_name=False, prefix=False):
    """-t exits 1 and stderr is exactly the expected lines; {cfg} in them
    is the app file as named on the command line."""
    d, path = write(text)
    arg = "app.cfg" if cwd_name else path
    rc, out, err = run_serve(["-t", arg], cwd=d)
    want = [e.replace("{cfg}", arg) for e in expected]
    lines = err.splitlines()
    eq(rc, 1, "exit code (stderr %r)" % err)
    eq(out, "", "stdout")
    if prefix:
        eq(len(lines), len(want), "number of stderr lines in %r" % err)
        for got, w in zip(lines, want):
            check(got.startswith(w), "stderr line:\n  got:      %r\n  "
                  "expected: %r..." % (got, w))
    else:
        eq(lines, want, "stderr lines")
    clean(err)


def check_refused_files(text, files, expected):
    """check_refused with files beside the app file; {dir} is its
    directory."""
    d, path = write(text)
    for name, content in files.items():
        with open(os.path.join(d, name), "w") as f:
            f.write(content)
    rc, out, err = run_serve(["-t", path], cwd="/")
    eq(rc, 1, "exit code (stderr %r)" % err)
    eq(err.splitlines(), [e.replace("{dir}", d) for e in expected],
       "stderr lines")
    clean(err)


def check_overrides(args, text, expected):
    """-t with options before the app file: exit 1 and exactly the
    expected stderr lines ({cfg}: the app file), or exit 0 and "ok" when
    expected is empty."""
    d, path = write(text)
    rc, out, err = run_serve(args + ["-t", path], cwd="/")
    want = [e.replace("{cfg}", path).replace("{dir}", d) for e in expected]
    if not want:
        eq((rc, out), (0, "%s: ok (0 plugins)\n" % path),
           "(exit code, stdout) with stderr %r" % err)
    else:
        eq(rc, 1, "exit code (stderr %r)" % err)
        eq(err.splitlines(), want, "stderr lines")
    clean(err)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.2", 0))
        return s.getsockname()[1]


def t_overrides_served():
    """-p, -b and -l beat the file's listen and log keys; -o any key (a
    smaller max_message_size closes a bigger message with 1009)."""
    port = free_port()
    srv = Server('name = "ovr";\nlisten = { host = "127.0.0.1"; port = 1; };'
                 '\nlog = { level = "err"; };\n',
                 args=["-p", str(port), "--bind", "127.0.0.2", "-l", "info",
                       "-o", "limits.max_message_size=100",
                       "--set", "limits.max_frame_size=100"]).start()
    eq((srv.host, srv.port), ("127.0.0.2", port), "where it listens")

    async def go():
        ws = await connect("ws://127.0.0.2:%d/ws" % port)
        await ws.ws.send("x" * 101)
        code, _ = await ws.wait_closed()
        eq(code, 1009, "close code of a 101-byte message")
    asyncio.run(go())
    srv.stop()
    clean(srv.log())


def t_init_fails():
    tk = plugin_file("testkit")
    d, path = write('name = "initfail";\n%s\nplugins = ( "echo", { path = '
                    '"testkit"; settings = { fail = true; }; } );\n' % LISTEN)
    rc, out, err = run_serve([path], timeout=30)
    eq(rc, 1, "exit code (stderr %r)" % err)
    want = "%s:3: plugins[1]: %s: init failed: settings.fail is true" % (
        path, tk)
    check(want in err.splitlines(), "stderr lacks the line %r:\n%s"
          % (want, err))
    check("listening on" not in err, "it said it was listening:\n" + err)
    bad = [line for line in log_problems(err)
           if "level=err" not in line]  # an ERR log line is fine here
    check(not bad, "sanitizer report:\n" + "\n".join(bad))


def t_usage():
    rc, out, err = run_serve([])
    eq(rc, 2, "exit code without an app file")
    check("usage: pxl-serve" in err, "no usage on stderr: %r" % err)
    rc, out, err = run_serve(["-x", "app.cfg"])
    eq(rc, 2, "exit code for an unknown option")
    rc, out, err = run_serve(["--nope", "app.cfg"])
    eq(rc, 2, "exit code for an unknown long option")
    check("usage: pxl-serve" in err, "no usage on stderr: %r" % err)


def t_help(opt="-h"):
    rc, out, err = run_serve([opt])
    eq(rc, 0, "exit code")
    check(out.startswith("usage: pxl-serve"), "stdout %r" % out[:200])
    clean(err)


def t_version(opt="-V"):
    rc, out, err = run_serve([opt])
    eq(rc, 0, "exit code")
    check(re.match(r"^pxl-serve \S+ \(plugin ABI \d+\.\d+\)\n$", out),
          "stdout %r" % out)
    clean(err)


def t_keys():
    rc, out, err = run_serve(["-T"])
    eq(rc, 0, "exit code")
    for key in ("name", "listen.port", "limits.max_message_size",
                "limits.max_connections", "log.level"):
        check(re.search(r"^%s\s" % re.escape(key), out, re.M),
              "-T does not list %s:\n%s" % (key, out))
    clean(err)


async def requests(srv, *pairs):
    """Send each (type, action) to srv; return the replies in order."""
    c = await connect(srv.url())
    try:
        out = []
        for i, (t, a) in enumerate(pairs):
            out.append(await c.request(t, a, rid=i))
        return out
    finally:
        await c.close()


def t_settings_served():
    st, old = test_plugin("settings"), test_plugin("old_abi")
    # Every key set, and an ABI 1.1 plugin whose group nobody checks.
    srv = Server(app_config(
        ("echo", '{ path = "%s"; settings = { count = 42; big = '
         '4999999999L; any = -3; flag = false; word = "xyz"; path = '
         '"/p"; }; }' % st,
         '{ path = "%s"; settings = { answer = 42; colour = "red"; }; }'
         % old)), "set").start()
    got = asyncio.run(requests(srv, ("settings", "get"), ("old", "get")))
    eq(got, [reply("settings", "get", {"count": 42, "big": 4999999999,
                                       "any": -3, "flag": False,
                                       "word": "xyz", "path": "/p"}, 0),
             reply("old", "get", 42, 1)], "replies")
    srv.stop()


def t_settings_defaults():
    st = test_plugin("settings")
    srv = Server(app_config(("echo", '{ path = "%s"; settings = { }; }'
                             % st)), "defaults").start()
    got = asyncio.run(requests(srv, ("settings", "get"),
                               ("settings", "undeclared")))
    eq(got, [reply("settings", "get", {"count": 7, "big": -4000000000,
                                       "any": 0, "flag": True,
                                       "word": "abc", "path": None}, 0),
             reply("settings", "undeclared", {"nosuch": 0,
                                              "countAsBool": False}, 1)],
       "replies")
    srv.terminate()
    eq(srv.wait(), 0, "exit code")
    log = srv.log()
    for want in ('setting \\"nosuch\\" is not declared as an integer',
                 'setting \\"count\\" is not declared as a boolean'):
        check(want in log, "no ERR line with %r in the log:\n%s"
              % (want, log))
    bad = [line for line in log_problems(log)
           if "is not declared as" not in line]
    check(not bad, "other problems in the log:\n" + "\n".join(bad))


def main():
    C = tap.case
    major, minor = abi()
    echo, tk = plugin_file("echo"), plugin_file("testkit")
    bad_abi, no_sym, dup = (test_plugin("bad_abi"), test_plugin("no_symbol"),
                            test_plugin("dup_route"))

    good = ('# a good app\nname = "good";\n%s\nplugins = ( "echo", { path = '
            '"testkit"; settings = { greeting = "hi"; }; } );\n'
            'raw_text = false;\nshutdown_timeout = 5;\n'
            'limits = { max_message_size = 4194304; max_frame_size = 4194304;'
            ' max_json_depth = 64; handshake_timeout = 10; '
            'max_header_size = 8192; max_connections = 10000; '
            'max_output_bytes = 8388608; };\n'
            'log = { level = "debug"; format = "json"; };\n' % LISTEN)
    C("-t on a good app file: exit 0, 'FILE: ok (2 plugins)'", check_ok,
      good, 2)
    C("-t with the file named relative to the cwd", check_ok, good, 2,
      cwd_name=True)
    C("-t runs no init: settings.fail = true still checks ok "
      "('FILE: ok (1 plugin)')", check_ok,
      'name = "x";\n%s\nplugins = ( { path = "testkit"; settings = '
      '{ fail = true; }; } );\n' % LISTEN, 1)

    def link_plugin(d):
        os.mkdir(os.path.join(d, "plug"))
        os.symlink(tk, os.path.join(d, "plug", "testkit.so"))
    C("-t: a plugin path is relative to the app file, not the cwd",
      check_ok, 'name = "x";\nplugins = ( "plug/testkit.so" );\n', 1,
      setup=link_plugin)
    C("-t: no plugins at all", check_ok, 'name = "x";\n', 0)

    C("unknown key -> file:line: key: unknown key", check_refused,
      'name = "x";\n%s\n\nbogus = 1;\n' % LISTEN,
      ["{cfg}:4: bogus: unknown key"])
    C("unknown key, file named relative to the cwd", check_refused,
      'name = "x";\nbogus = 1;\n', ["{cfg}:2: bogus: unknown key"],
      cwd_name=True)
    C("unknown nested key -> limits.max_foo: unknown key", check_refused,
      'name = "x";\nlimits = {\n  max_foo = 1;\n};\n',
      ["{cfg}:3: limits.max_foo: unknown key"])
    C("wrong type -> listen.port: expected an integer, got a string",
      check_refused, 'name = "x";\nlisten = {\n  port = "80";\n};\n',
      ["{cfg}:3: listen.port: expected an integer, got a string"])
    C("wrong type -> raw_text: expected a boolean", check_refused,
      'name = "x";\nraw_text = 1;\n',
      ["{cfg}:2: raw_text: expected a boolean (true or false), got an "
       "integer"])
    C("wrong type -> limits: expected a group", check_refused,
      'name = "x";\nlimits = 5;\n',
      ["{cfg}:2: limits: expected a group { ... }, got an integer"])
    C("out of range -> listen.port: 70000 is out of range 0..65535",
      check_refused, 'name = "x";\n\nlisten = { port = 70000; };\n',
      ["{cfg}:3: listen.port: 70000 is out of range 0..65535"])
    C("out of range -> limits.max_json_depth: 0 is out of range 1..1024",
      check_refused, 'name = "x";\nlimits = {\n max_json_depth = 0;\n};\n',
      ["{cfg}:3: limits.max_json_depth: 0 is out of range 1..1024"])
    C("syntax error -> file:line: syntax error", check_refused,
      'name = "x";\nlisten = { port = 0; host = ; };\nraw_text = true;\n',
      ["{cfg}:2: syntax error"])
    C("every problem at once, in file order", check_refused,
      'name = "x";\nlisten = { port = "80";\n  host = "127.0.0.1"; };\n'
      'bogus = 1;\nlimits = { max_json_depth = 0; };\n',
      ["{cfg}:2: listen.port: expected an integer, got a string",
       "{cfg}:4: bogus: unknown key",
       "{cfg}:5: limits.max_json_depth: 0 is out of range 1..1024"])
    C("plugin not found -> plugins[0]: plugin \"nosuch\" not found",
      check_refused, 'name = "x";\nplugins = ( "nosuch" );\n',
      ['{cfg}:2: plugins[0]: plugin "nosuch" not found in PXL_PLUGIN_PATH '
       "or "], prefix=True)

    C("bad ABI plugin refused: 'FILE:LINE: plugins[0]: <path>: ABI %d.%d "
      "is newer than this pxl-serve (%d.%d)'" % (major, minor + 7, major,
                                                 minor), check_refused,
      'name = "x";\nplugins = ( "%s" );\n' % bad_abi,
      ["{cfg}:2: plugins[0]: %s: ABI %d.%d is newer than this pxl-serve "
       "(%d.%d)" % (bad_abi, major, minor + 7, major, minor)])
    C("plugin without the symbol refused: 'FILE:LINE: plugins[0]: <path>: "
      "no pxl_plugin symbol'",
      check_refused, 'name = "x";\nplugins = ( "%s" );\n' % no_sym,
      ["{cfg}:2: plugins[0]: %s: no pxl_plugin symbol" % no_sym],
      prefix=True)
    C("duplicate route refused: 'FILE:LINE: plugins[1]: <path>: route "
      "\"echo/echo\" is already claimed by plugin \"echo\" (<echo path>)'",
      check_refused,
      'name = "x";\nplugins = ( "echo", "%s" );\n' % dup,
      ['{cfg}:2: plugins[1]: %s: route "echo/echo" is already claimed by '
       'plugin "echo" (%s)' % (dup, echo)])
    C("all bad plugins at once: one line each, in list order",
      check_refused, 'name = "x";\nplugins = ( "echo",\n  "%s",\n  "%s",\n'
      '  "%s", "testkit" );\n' % (bad_abi, no_sym, dup),
      ["{cfg}:3: plugins[1]: %s: ABI %d.%d is newer than this pxl-serve "
       "(%d.%d)" % (bad_abi, major, minor + 7, major, minor),
       "{cfg}:4: plugins[2]: %s: no pxl_plugin symbol" % no_sym,
       '{cfg}:5: plugins[3]: %s: route "echo/echo" is already claimed by '
       'plugin "echo" (%s)' % (dup, echo)], prefix=True)
    C("the same plugin twice refused", check_refused,
      'name = "x";\nplugins = ( "testkit", "testkit" );\n',
      ['{cfg}:2: plugins[1]: %s: a plugin named "testkit" is already '
       'loaded from %s' % (tk, tk)])
    C("config errors and plugin errors reported in one run, in line order",
      check_refused, 'name = "x";\nplugins = ( "%s" );\nbogus = 1;\n'
      % bad_abi, ["{cfg}:2: plugins[0]: %s: ABI %d.%d is newer than this "
                  "pxl-serve (%d.%d)" % (bad_abi, major, minor + 7, major,
                                         minor),
                  "{cfg}:3: bogus: unknown key"])
    C("a missing plugin file: its normalised path and 'No such file or "
      "directory', no dlerror repeat", check_refused,
      'name = "x";\nplugins = ( "./missing.so", "./sub/../nope.so" );\n',
      ["{cfg}:2: plugins[0]: ./missing.so: cannot load: No such file or "
       "directory",
       "{cfg}:2: plugins[1]: ./sub/../nope.so: cannot load: No such file "
       "or directory"], cwd_name=True)
    C("a missing TLS file is named with its line; a bad one says why; "
      "every problem in line order", check_refused,
      'name = "x";\nbogus = 1;\nlisten = { port = 0;\n  tls = {\n'
      '    certificate = "./nocert.pem";\n    key = "nokey.pem"; };\n};\n'
      'limits = { max_json_depth = 0; };\n',
      ["{cfg}:2: bogus: unknown key",
       "{cfg}:5: listen.tls.certificate: cannot read ./nocert.pem: No "
       "such file or directory",
       "{cfg}:6: listen.tls.key: cannot read ./nokey.pem: No such file or "
       "directory",
       "{cfg}:8: limits.max_json_depth: 0 is out of range 1..1024"],
      cwd_name=True)
    C("a certificate that is not PEM: 'cannot load PATH: not PEM'",
      check_refused_files, 'name = "x";\nlisten = { port = 0;\n  tls = {\n'
      '    certificate = "cert.pem";\n    key = "key.pem"; };\n};\n',
      {"cert.pem": "junk\n", "key.pem": "junk\n"},
      ["{dir}/app.cfg:4: listen.tls.certificate: cannot load "
       "{dir}/cert.pem: not PEM (no -----BEGIN line)"])

    st, bad_st, old = (test_plugin("settings"), test_plugin("bad_settings"),
                       test_plugin("old_abi"))
    C("-t: plugin settings with every type set, and defaults", check_ok,
      'name = "x";\nplugins = ( { path = "%s"; settings = { count = 1; '
      'big = -5000000000L; any = 0; flag = false; word = "12345678"; '
      'path = ""; }; }, "hello" );\n' % st, 2)
    C("-t: plugin settings checked like the app file's keys, every "
      "problem with file:line and plugins[N].settings.KEY", check_refused,
      'name = "x";\nplugins = ( "echo",\n  { path = "%s"; settings = {\n'
      '    count = 0;\n    big = 5000000001L; flag = 1;\n'
      '    word = "waytoolong";\n    path = 5;\n    colour = "red";\n'
      '  }; },\n  { path = "hello"; settings = { greeting = 5; }; }\n);\n'
      'bogus = 1;\n' % st,
      ["{cfg}:4: plugins[1].settings.count: 0 is out of range 1..100",
       "{cfg}:5: plugins[1].settings.big: 5000000001 is out of range "
       "-5000000000..5000000000",
       "{cfg}:5: plugins[1].settings.flag: expected a boolean (true or "
       "false), got an integer",
       '{cfg}:6: plugins[1].settings.word: "waytoolong" must be 2 to 8 '
       "characters",
       "{cfg}:7: plugins[1].settings.path: expected a string, got an "
       "integer",
       "{cfg}:8: plugins[1].settings.colour: unknown key",
       "{cfg}:10: plugins[2].settings.greeting: expected a string, got an "
       "integer",
       "{cfg}:12: bogus: unknown key"])
    C("-t: testkit's settings are checked too (unknown key)",
      check_refused, 'name = "x";\nplugins = ( { path = "testkit";\n'
      '  settings = { greting = "hi"; }; } );\n',
      ["{cfg}:3: plugins[0].settings.greting: unknown key"])
    C("-t: a plugin's bad settings table is refused by its path",
      check_refused, 'name = "x";\nplugins = ( "%s" );\n' % bad_st,
      ["%s: settings.level: declared twice" % bad_st,
       "%s: settings.span: range 5..1 is empty" % bad_st,
       "%s: settings.colour: unknown type 9" % bad_st,
       "%s: settings.level: default 0 is out of range 1..10" % bad_st,
       '%s: settings.name: default "x" must be 3 to 8 characters'
       % bad_st])
    C("-t: an ABI 1.1 plugin loads; its settings group is not checked",
      check_ok, 'name = "x";\nplugins = ( { path = "%s"; settings = { '
      'answer = 42; colour = "red"; }; } );\n' % old, 1)
    C("settings and defaults as a running plugin reads them; an ABI 1.1 "
      "plugin's init gets its group", t_settings_served)
    C("defaults where the file sets nothing; an undeclared setting reads "
      "0/false with an ERR line", t_settings_defaults)

    C("-p/-b/-l/-o override the file: where it listens, its log level, "
      "any key", t_overrides_served)
    C("-p replaces the file's bad port; -o adds a key the file lacks",
      check_overrides, ["-p", "8080", "-o", "rooms.multiple=false",
                        "-o", "workers=1", "-o", "listen.origins=a,b"],
      'name = "x";\nlisten = { port = 70000; };\nworkers = 3;\n', [])
    C("bad overrides: each named 'command line: KEY: ...', the file's "
      "problems after them in line order", check_overrides,
      ["-p", "99999", "-o", "bogus=1", "-o", "limits.rate=abc",
       "-l", "loud", "-o", "rooms.multiple=maybe", "-o", "plugins=x",
       "-o", "nokv", "-o", "database.driver=mysql"],
      'name = "x";\nplugins = ( "./missing.so" );\nbogus2 = 1;\n',
      # what -o cannot parse first, in argument order, then what the
      # values' checks refuse
      ["command line: bogus: unknown key",
       'command line: limits.rate: "abc" is not an integer',
       'command line: rooms.multiple: "maybe" is not true or false',
       "command line: plugins: is a list: set it in the app file",
       'command line: -o: "nokv" is not KEY=VALUE',
       "command line: listen.port: 99999 is out of range 0..65535",
       'command line: log.level: "loud" must be one of err, warn, notice, '
       'info, debug',
       'command line: database.driver: "mysql" must be sqlite or '
       'postgresql',
       "{cfg}:2: plugins[0]: %s/missing.so: cannot load: No such file or "
       "directory" % "{dir}",
       "{cfg}:3: bogus2: unknown key"])
    C("init failure: exit 1, 'FILE:LINE: plugins[1]: <path>: init failed: "
      "settings.fail is true'",
      t_init_fails)
    C("-h: exit 0, usage on stdout", t_help)
    C("--help: exit 0, usage on stdout", t_help, "--help")
    C("-V: exit 0, version and plugin ABI", t_version)
    C("--version: exit 0, version and plugin ABI", t_version, "--version")
    C("-T: exit 0, lists the keys", t_keys)
    C("no app file or an unknown option: usage, exit 2", t_usage)


tap.run(main)
