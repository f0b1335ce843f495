"""A small transaction-pooling proxy speaking PostgreSQL's wire protocol: what PgBouncer does in
``pool_mode = transaction``, for the tests of a machine without PgBouncer (tests/test_pgbouncer.py
uses the real one too, when it is installed).

Like PgBouncer it answers the client's start-up itself (trust: no password), with its own
BackendKeyData (a made-up pid), and lends a server session out of a pool for each transaction:
one is taken when the client sends a message and given back when the server reports
ReadyForQuery outside a transaction block. So two transactions of one client may run on two
server sessions, and the pid a client was told is not its session's. Enough protocol for
psycopg's simple and extended queries; not COPY, not SSL, not cancel requests.
"""

from __future__ import annotations

import os
import random
import shutil
import socket
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

_SSL_REQUEST, _GSS_REQUEST, _CANCEL_REQUEST = 80877103, 80877104, 80877102
_PROTOCOL_3 = 196608


def _read_exact(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("peer closed")
        data += chunk
    return data


def _read_message(sock: socket.socket) -> tuple[bytes, bytes]:
    """One typed message: (type byte, whole message including type and length)."""
    head = _read_exact(sock, 5)
    (length,) = struct.unpack("!I", head[1:])
    return head[:1], head + _read_exact(sock, length - 4)


def _message(kind: bytes, payload: bytes) -> bytes:
    return kind + struct.pack("!I", len(payload) + 4) + payload


@dataclass
class _Server:
    sock: socket.socket
    parameters: list[bytes]  # the ParameterStatus messages it sent at start-up


@dataclass
class _Pool:
    host: str
    port: int
    idle: dict[tuple[str, str], list[_Server]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self, user: str, database: str) -> _Server:
        with self.lock:
            idle = self.idle.setdefault((user, database), [])
            if idle:
                return idle.pop(random.randrange(len(idle)))
        return self._open(user, database)

    def give_back(self, user: str, database: str, server: _Server) -> None:
        with self.lock:
            self.idle.setdefault((user, database), []).append(server)

    def _open(self, user: str, database: str) -> _Server:
        sock = socket.create_connection((self.host, self.port))
        params = b"user\0" + user.encode() + b"\0database\0" + database.encode() + b"\0\0"
        body = struct.pack("!I", _PROTOCOL_3) + params
        sock.sendall(struct.pack("!I", len(body) + 4) + body)
        parameters: list[bytes] = []
        while True:
            kind, whole = _read_message(sock)
            if kind == b"R" and struct.unpack("!I", whole[5:9])[0] != 0:
                raise ConnectionError("the test pooler only knows trust authentication")
            if kind == b"E":
                raise ConnectionError(whole[5:].decode(errors="replace"))
            if kind == b"S":
                parameters.append(whole)
            if kind == b"Z":
                return _Server(sock, parameters)

    def close(self) -> None:
        with self.lock:
            for servers in self.idle.values():
                for server in servers:
                    server.sock.close()
            self.idle.clear()


class TransactionPooler:
    """Listens on 127.0.0.1 (``port``) in front of the server at ``host:port``."""

    def __init__(self, host: str, port: int) -> None:
        self._pool = _Pool(host, port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def start(self) -> TransactionPooler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        self._listener.close()
        self._pool.close()

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                client, _addr = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _startup(self, client: socket.socket) -> dict[str, str] | None:
        while True:
            (length,) = struct.unpack("!I", _read_exact(client, 4))
            body = _read_exact(client, length - 4)
            (code,) = struct.unpack("!I", body[:4])
            if code in (_SSL_REQUEST, _GSS_REQUEST):
                client.sendall(b"N")
                continue
            if code != _PROTOCOL_3:
                return None  # a cancel request, or an unknown protocol
            fields = body[4:].split(b"\0")
            return {
                k.decode(): v.decode() for k, v in zip(fields[::2], fields[1::2], strict=False) if k
            }

    def _serve(self, client: socket.socket) -> None:
        server: _Server | None = None
        try:
            params = self._startup(client)
            if params is None:
                return
            user = params.get("user", "postgres")
            database = params.get("database", user)
            first = self._pool.take(user, database)
            hello = [_message(b"R", struct.pack("!I", 0)), *first.parameters]
            fake_pid, key = random.randrange(10**6, 2**31), random.randrange(2**31)
            hello.append(_message(b"K", struct.pack("!II", fake_pid, key)))
            hello.append(_message(b"Z", b"I"))
            self._pool.give_back(user, database, first)
            client.sendall(b"".join(hello))
            while True:
                kind, whole = _read_message(client)
                if kind == b"X":
                    return
                if server is None:
                    server = self._pool.take(user, database)
                server.sock.sendall(whole)
                if kind not in (b"Q", b"S"):
                    continue  # extended protocol: the answers come after Sync
                while True:
                    answer, message = _read_message(server.sock)
                    client.sendall(message)
                    if answer == b"Z":
                        break
                if message[5:6] == b"I":  # outside a transaction block: back to the pool
                    self._pool.give_back(user, database, server)
                    server = None
        except (ConnectionError, OSError):
            pass
        finally:
            client.close()
            if server is not None:
                server.sock.close()  # mid-transaction: PgBouncer closes it too


def pgbouncer_binary() -> str | None:
    """PgBouncer's executable (PATH, else where Debian puts it), if installed."""
    return shutil.which("pgbouncer") or next(
        (p for p in ("/usr/sbin/pgbouncer", "/usr/bin/pgbouncer") if os.access(p, os.X_OK)), None
    )


@contextmanager
def transaction_pooler(host: str, port: int) -> Iterator[TransactionPooler]:
    pooler = TransactionPooler(host, port).start()
    try:
        yield pooler
    finally:
        pooler.stop()
