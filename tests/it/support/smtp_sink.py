"""Test SMTP sink: a real aiosmtpd server on 127.0.0.1 that stores what it accepts.

Each accepted message becomes <dir>/<n>.eml (the DATA bytes) with <dir>/<n>.json beside it
({"mail_from", "rcpt_tos"}), written before the .eml so a visible .eml is always complete;
a message refused by --reply is kept the same way as refused-<n>.eml and refused-<n>.json.
Every TCP connection adds a line to <dir>/connections.log, so a test can prove that
nothing connected. Prints "READY <port>" on stdout once listening (port 0 picks one).

    python smtp_sink.py --dir D [--port P] [--starttls CERT KEY | --smtps CERT KEY]
                        [--size BYTES] [--auth USER:PASSWORD | --echo-auth] [--reply "554 ..."]

--echo-auth offers AUTH without TLS and refuses every login with a 535 that echoes the
login and password it got (a server whose error text a client must not copy anywhere).
"""

import argparse
import asyncio
import json
import os
import ssl
import sys

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


class Sink:
    """aiosmtpd handler: answers DATA with --reply and keeps the message, as <n>.eml if
    that is a 250, else as refused-<n>.eml (what a client sent that the server refused)."""

    def __init__(self, out_dir, reply):
        self.out_dir = out_dir
        self.reply = reply
        self.count = 0

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        accepted = self.reply.startswith("250")
        name = str(self.count) if accepted else f"refused-{self.count}"
        base = os.path.join(self.out_dir, name)
        # tmp + rename: the test polls for <n>.eml and must never see half a file.
        with open(base + ".json.tmp", "w", encoding="utf-8") as f:
            json.dump({"mail_from": envelope.mail_from, "rcpt_tos": envelope.rcpt_tos}, f)
        os.replace(base + ".json.tmp", base + ".json")
        with open(base + ".eml.tmp", "wb") as f:
            f.write(envelope.original_content or envelope.content)
        os.replace(base + ".eml.tmp", base + ".eml")
        return self.reply


class Authenticator:
    """Accepts exactly one login; anything else is refused with 535."""

    def __init__(self, user, password):
        self.user = user.encode()
        self.password = password.encode()

    def __call__(self, server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == self.user
            and auth_data.password == self.password
        )
        # handled=False: aiosmtpd then sends the 535 itself (True would leave the client
        # waiting for an answer that never comes).
        return AuthResult(success=ok, handled=False)


class EchoingRefuser:
    """Refuses every login, echoing what it got in the 535 reply."""

    def __call__(self, server, session, envelope, mechanism, auth_data):
        got = auth_data
        if isinstance(auth_data, LoginPassword):
            got = f"{auth_data.login.decode(errors='replace')} {auth_data.password.decode(errors='replace')}"
        with open(os.path.join(server.event_handler.out_dir, "auth.log"), "a", encoding="utf-8") as f:
            f.write(f"{mechanism} {got}\n")
        return AuthResult(success=False, handled=False, message=f"535 5.7.8 refused {mechanism} {got}")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--dir", required=True)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--starttls", nargs=2, metavar=("CERT", "KEY"))
    p.add_argument("--smtps", nargs=2, metavar=("CERT", "KEY"))
    # 40 MiB: a 19.9 MiB package is about 28.6 MB once base64-encoded.
    p.add_argument("--size", type=int, default=40 * 1024 * 1024)
    p.add_argument("--auth")
    p.add_argument("--echo-auth", action="store_true")
    p.add_argument("--reply", default="250 OK")
    args = p.parse_args()

    os.makedirs(args.dir, exist_ok=True)
    log_path = os.path.join(args.dir, "connections.log")
    handler = Sink(args.dir, args.reply)

    def context(pair):
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(pair[0], pair[1])
        return ctx

    starttls_ctx = context(args.starttls) if args.starttls else None
    smtps_ctx = context(args.smtps) if args.smtps else None
    auth = None
    if args.auth:
        user, _, password = args.auth.partition(":")
        auth = Authenticator(user, password)
    if args.echo_auth:
        auth = EchoingRefuser()

    class CountingSMTP(SMTP):
        def connection_made(self, transport):
            # Called again after STARTTLS on the same connection: count the first only.
            if self._original_transport is None:
                with open(log_path, "a", encoding="utf-8") as f:
                    f.write(f"{transport.get_extra_info('peername')}\n")
            super().connection_made(transport)

    def factory():
        return CountingSMTP(
            handler,
            data_size_limit=args.size,
            # A fixed name: the default asks DNS for the FQDN, which can stall offline.
            hostname="sink.test",
            tls_context=starttls_ctx,
            require_starttls=False,
            authenticator=auth,
            auth_required=False,
            # Implicit TLS is encrypted, but aiosmtpd only knows about STARTTLS.
            auth_require_tls=smtps_ctx is None and not args.echo_auth,
        )

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    server = loop.run_until_complete(
        loop.create_server(factory, host="127.0.0.1", port=args.port, ssl=smtps_ctx)
    )
    port = server.sockets[0].getsockname()[1]
    print(f"READY {port}", flush=True)
    try:
        loop.run_forever()
    finally:
        server.close()


if __name__ == "__main__":
    sys.exit(main())
