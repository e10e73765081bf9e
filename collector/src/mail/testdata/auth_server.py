"""An aiosmtpd server for Ampel's mail tests that requires a login.

usage: auth_server.py HOST PORT CERT KEY MAILDIR USER PASSWORD MODE [SIZE]

MODE "starttls": plain listener; STARTTLS is required, then AUTH (PLAIN or LOGIN).
MODE "tls":      implicit TLS from the first byte, then AUTH.
SIZE (optional): the message size limit advertised in EHLO (default 33554432).
Only USER with PASSWORD may log in; accepted mail lands in the Maildir MAILDIR.
Prints "ready" once listening and runs until killed.
"""

import ssl
import sys
import threading

from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Mailbox
from aiosmtpd.smtp import AuthResult, LoginPassword


def main() -> None:
    host, port, cert, key, maildir, user, password, mode = sys.argv[1:9]
    size = int(sys.argv[9]) if len(sys.argv) > 9 else 33554432
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == user.encode()
            and auth_data.password == password.encode()
        )
        # handled=False lets aiosmtpd answer "535 5.7.8 Authentication credentials invalid".
        return AuthResult(success=ok, handled=False)

    common = dict(
        hostname=host,
        port=int(port),
        authenticator=authenticator,
        auth_required=True,
        data_size_limit=size,
    )
    if mode == "starttls":
        controller = Controller(
            Mailbox(maildir), tls_context=context, require_starttls=True, **common
        )
    elif mode == "tls":
        # The whole session is encrypted, so AUTH may be offered right away.
        controller = Controller(
            Mailbox(maildir), ssl_context=context, auth_require_tls=False, **common
        )
    else:
        sys.exit(f"unknown mode {mode!r}")
    controller.start()
    print("ready", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
