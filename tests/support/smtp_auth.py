"""aiosmtpd (the real SMTP server of tests/notify.rs) configured with what its command line lacks:
SMTP AUTH (PLAIN, LOGIN), offered only after STARTTLS and required before a mail is taken.

    python smtp_auth.py PORT MAILDIR CERT KEY USER PASSWORD

Saves each mail to the maildir; stops when its stdin closes.
"""

import ssl
import sys

from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Mailbox
from aiosmtpd.smtp import AuthResult, LoginPassword

port, maildir, cert, key, user, password = sys.argv[1:7]


def authenticate(server, session, envelope, mechanism, auth_data):
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login == user.encode()
        and auth_data.password == password.encode()
    )
    return AuthResult(success=ok, handled=False)


context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
context.load_cert_chain(cert, key)
controller = Controller(
    Mailbox(maildir),
    hostname="127.0.0.1",
    port=int(port),
    tls_context=context,
    require_starttls=True,
    authenticator=authenticate,
    auth_required=True,
    auth_require_tls=True,
)
controller.start()
sys.stdin.read()
controller.stop()
