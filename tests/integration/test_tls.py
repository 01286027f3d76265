"""
test_tls - wss:// through libevent_openssl: a self-signed certificate made
with the openssl command, a python3-websockets client over TLS, and the
refusals when the certificate or key is unusable (-t names the file).
"""
import asyncio
import os
import ssl
import subprocess
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from pxltest import TAP, Server, check, eq, run_serve, tmpdir  # noqa: E402
from pxlws import connect, reply  # noqa: E402

tap = TAP()
tap.deadline(60)


def make_cert(d):
    cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048",
                    "-nodes", "-keyout", key, "-out", cert, "-days", "2",
                    "-subj", "/CN=localhost"], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return cert, key


def tls_config(cert, key):
    return ('name = "tls";\n'
            'listen = { host = "127.0.0.1"; port = 0; tls = { '
            'certificate = "%s"; key = "%s"; }; };\n'
            'plugins = ( "testkit" );\n' % (cert, key))


def client_context(cert):
    ctx = ssl.create_default_context(cafile=cert)
    ctx.check_hostname = False  # the certificate names localhost
    return ctx


async def t_round_trip(srv, cert):
    url = "wss://127.0.0.1:%d/ws" % srv.port
    c = await connect(url, ssl=client_context(cert))
    try:
        r = await c.request("test", "echo", {"over": "tls"}, "t1")
        eq(r, reply("test", "echo", {"over": "tls"}, "t1"), "reply over wss")
        check(c.connected is not None, "system/connected arrives over wss")
    finally:
        await c.close()


async def t_plain_client_refused(srv):
    # A plain ws:// client talking to a TLS port gets no upgrade.
    try:
        c = await connect("ws://127.0.0.1:%d/ws" % srv.port, timeout=5)
    except Exception:  # noqa: BLE001 - any handshake failure is the point
        return
    await c.close()
    raise AssertionError("a plaintext upgrade succeeded on a wss port")


def main():
    d = tmpdir()
    cert, key = make_cert(d)
    srv = Server(tls_config(cert, key), "tls")
    if not tap.case("pxl-serve starts with listen.tls", srv.start):
        return
    try:
        asyncio.run(tap.acase("routed request over wss://", t_round_trip,
                              srv, cert))
        asyncio.run(tap.acase("plain ws:// to a TLS port is refused",
                              t_plain_client_refused, srv))
    finally:
        srv.stop_case(tap)

    # Unusable files: -t refuses and names the file.
    other = tmpdir()
    _, other_key = make_cert(other)
    bad = os.path.join(d, "bad.cfg")
    with open(bad, "w") as f:
        f.write(tls_config(cert, other_key))
    rc, _, err = run_serve(["-t", bad])
    tap.ok(rc == 1 and "listen.tls.key: does not match the certificate"
           in err, "-t refuses a key that does not match the certificate",
           "rc=%s stderr=%r" % (rc, err))
    with open(bad, "w") as f:
        f.write(tls_config(os.path.join(d, "missing.pem"), key))
    rc, _, err = run_serve(["-t", bad])
    want = ("bad.cfg:2: listen.tls.certificate: cannot read %s: No such "
            "file or directory" % os.path.join(d, "missing.pem"))
    tap.ok(rc == 1 and want in err,
           "-t refuses a missing certificate and names it",
           "rc=%s stderr=%r" % (rc, err))
    with open(bad, "w") as f:
        f.write('name = "x";\nlisten = { tls = { certificate = "%s"; }; };\n'
                % cert)
    rc, _, err = run_serve(["-t", bad])
    tap.ok(rc == 1 and "bad.cfg:2: listen.tls: needs both certificate "
           "and key" in err, "a certificate without a key is a config error",
           "rc=%s stderr=%r" % (rc, err))


tap.run(main)
