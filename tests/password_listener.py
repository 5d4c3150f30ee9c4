"""A loopback listener that speaks just enough of PostgreSQL's protocol to ask the
client for a cleartext password, and records what the client sends back: how tests
see whether Lockplane would hand a password to a server it should not trust."""

from __future__ import annotations

import socket
import struct

_SSL_OR_GSS_REQUEST = (80877103, 80877104)


def ask_for_password(conn: socket.socket, got: list[bytes]) -> None:
    """Answer one connection: decline SSL/GSS encryption, request a cleartext password
    (AuthenticationCleartextPassword) and append the client's reply to ``got``."""
    with conn:
        conn.settimeout(5)
        try:
            n = struct.unpack("!I", conn.recv(4))[0]
            body = conn.recv(n - 4)
            if struct.unpack("!I", body[:4])[0] in _SSL_OR_GSS_REQUEST:
                conn.send(b"N")
                n = struct.unpack("!I", conn.recv(4))[0]
                conn.recv(n - 4)
            conn.send(b"R" + struct.pack("!II", 8, 3))
            got.append(conn.recv(4096))
        except OSError:
            pass
