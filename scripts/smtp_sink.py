#!/usr/bin/env python3
"""A real SMTP server (aiosmtpd) that captures every message it receives.

    pip install aiosmtpd
    python3 scripts/smtp_sink.py --dir OUT [--host 127.0.0.1] [--port 0] [--auth USER:PASS]

For each message it writes, in OUT:

  NNNN.eml   the raw message exactly as received (DATA);
  NNNN.json  {"mail_from", "rcpt_tos", "subject", "to", "cc", "bcc",
              "content_type", "charset", "body", "headers"} with the subject and
             the text body decoded by Python's `email` package (RFC 2047 words,
             base64 / quoted-printable, charset), written after the .eml and
             renamed into place, so a reader that sees the .json sees both.

On start it prints one line `LISTENING <port>` (port 0 picks a free port) and
flushes stdout; it runs until it is killed. With --auth it requires SMTP AUTH
(PLAIN or LOGIN) with that user and password, over plain TCP (test use only).
"""

import argparse
import asyncio
import email
import email.policy
import json
import logging
import os
import sys
import warnings

try:
    from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword
except ImportError:  # pragma: no cover - reported to the caller
    sys.stderr.write("smtp_sink.py: aiosmtpd is not installed (pip install aiosmtpd)\n")
    sys.exit(3)


class Capture:
    def __init__(self, out_dir):
        self.out_dir = out_dir
        self.count = 0

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        stem = os.path.join(self.out_dir, "%04d" % self.count)
        raw = envelope.original_content or envelope.content
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        with open(stem + ".eml", "wb") as f:
            f.write(raw)
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        part = msg.get_body(preferencelist=("plain",))
        body = part.get_content() if part is not None else None
        info = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            "subject": str(msg["subject"]) if msg["subject"] is not None else None,
            "to": str(msg["to"]) if msg["to"] is not None else None,
            "cc": str(msg["cc"]) if msg["cc"] is not None else None,
            "bcc": str(msg["bcc"]) if msg["bcc"] is not None else None,
            "content_type": msg.get_content_type(),
            "charset": (part or msg).get_content_charset(),
            "body": body,
            "headers": {k: str(v) for k, v in msg.items()},
        }
        tmp = stem + ".json.tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(info, f, ensure_ascii=False, indent=1)
        os.replace(tmp, stem + ".json")
        return "250 Message accepted for delivery"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", required=True, help="where captured messages are written")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0, help="0 picks a free port")
    ap.add_argument("--auth", help="USER:PASS that AUTH must present (then AUTH is required)")
    args = ap.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    # Plain-text AUTH is deliberate here (loopback test relay): keep stderr quiet.
    warnings.filterwarnings("ignore")
    logging.getLogger("mail.log").setLevel(logging.ERROR)

    authenticator = None
    if args.auth:
        user, _, password = args.auth.partition(":")

        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = (
                isinstance(auth_data, LoginPassword)
                and auth_data.login.decode() == user
                and auth_data.password.decode() == password
            )
            # handled=False: aiosmtpd itself answers 535 on failure.
            return AuthResult(success=ok, handled=False)

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    handler = Capture(args.dir)

    def factory():
        return SMTP(
            handler,
            hostname="localhost",
            loop=loop,
            enable_SMTPUTF8=True,
            authenticator=authenticator,
            auth_required=bool(args.auth),
            auth_require_tls=False,
        )

    server = loop.run_until_complete(loop.create_server(factory, host=args.host, port=args.port))
    port = server.sockets[0].getsockname()[1]
    print("LISTENING %d" % port, flush=True)
    try:
        loop.run_forever()
    finally:
        server.close()


if __name__ == "__main__":
    main()
