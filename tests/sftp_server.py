"""A small SFTP server for tests: asyncssh on 127.0.0.1, in a background thread.

    server = start_sftp_server(tmp_path / "sftp", {
        "alice": {"public_key": alice_key.export_public_key("openssh").decode()},
        "bob": {"password": "s3cret"},
    })
    ... connect to 127.0.0.1:server.port, pinning server.host_key_line ...
    server.stop()

Each user logs in with a password and/or an authorized public key and sees only
``root/<user>`` (created when the server starts) as ``/``. asyncssh's own ``chroot`` only
remaps paths and follows symbolic links that point outside the root, so :class:`JailedSFTPServer`
resolves every path to its real location and refuses (permission denied) anything that ends up
outside the user's folder — a symlink escape included.

The server runs its own event loop in a daemon thread, so synchronous tests and clients
(paramiko) can use it directly. It listens on 127.0.0.1 only, on a free port.
"""

from __future__ import annotations

import asyncio
import hmac
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncssh

__all__ = ["JailedSFTPServer", "SFTPTestServer", "public_key_line", "start_sftp_server"]

HOST = "127.0.0.1"


def public_key_line(key: asyncssh.SSHKey) -> str:
    """A key's public half as one OpenSSH line, ``"ssh-ed25519 AAAA..."`` (no comment)."""
    return " ".join(key.export_public_key("openssh").decode("ascii").split()[:2])


class JailedSFTPServer(asyncssh.SFTPServer):
    """SFTP confined to one folder, symbolic links included.

    Every client path is mapped under the root, then resolved with ``os.path.realpath``; the
    *resolved* path is what the operation touches, and it must lie inside the root. So a link
    inside the root pointing outside is refused for every operation that follows it, while
    ``lstat`` and directory listings show it as a link, as a real OpenSSH server does.
    """

    def __init__(self, chan: asyncssh.SSHServerChannel, root: Path):
        super().__init__(chan, chroot=os.fsencode(root))
        assert self._chroot is not None  # set by the base class: realpath of the root, as bytes
        self._root: bytes = self._chroot

    def map_path(self, path: bytes) -> bytes:
        mapped = super().map_path(path)  # "/" + normalized client path under the root ('..' capped)
        real = os.path.realpath(mapped)
        if real != self._root and not real.startswith(self._root + b"/"):
            raise asyncssh.SFTPError(asyncssh.FX_PERMISSION_DENIED, "Permission denied: outside your folder")
        return real

    def lstat(self, path: bytes) -> os.stat_result:
        """The link itself, as OpenSSH answers: the parent is resolved (and jailed), the last
        part is not followed — so a client can tell a link from what it points to."""
        parent, name = os.path.split(path.rstrip(b"/"))
        if not name or name in (b".", b".."):
            return os.lstat(self.map_path(path))
        return os.lstat(os.path.join(self.map_path(parent or b"/"), name))


class _SSHServer(asyncssh.SSHServer):
    """Password and public-key login for the configured users; every other name is refused."""

    def __init__(
        self, users: dict[str, dict[str, Any]], connections: set[asyncssh.SSHServerConnection], logins: list[str]
    ):
        self._users = users
        self._connections = connections
        self._logins = logins
        self._conn: asyncssh.SSHServerConnection | None = None

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self._conn = conn
        self._connections.add(conn)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._conn is not None:
            self._connections.discard(self._conn)

    def begin_auth(self, username: str) -> bool:
        user = self._users.get(username, {})
        keys = user.get("public_key")
        if keys and self._conn is not None:
            keys = keys if isinstance(keys, (list, tuple)) else [keys]
            lines = [public_key_line(k) if isinstance(k, asyncssh.SSHKey) else str(k).strip() for k in keys]
            self._conn.set_authorized_keys(asyncssh.import_authorized_keys("\n".join(lines) + "\n"))
        return True  # always ask for authentication, known user or not

    def auth_completed(self) -> None:
        if self._conn is not None:
            self._logins.append(self._conn.get_extra_info("username"))

    def password_auth_supported(self) -> bool:
        return True

    def validate_password(self, username: str, password: str) -> bool:
        expected = self._users.get(username, {}).get("password")
        return expected is not None and hmac.compare_digest(expected.encode(), password.encode())

    def public_key_auth_supported(self) -> bool:
        return True


@dataclass
class SFTPTestServer:
    """A running server: ``host``, ``port``, ``host_key_line`` (to pin), ``folder(user)``, ``stop()``."""

    root: Path
    host: str
    port: int
    host_key: asyncssh.SSHKey
    _loop: asyncio.AbstractEventLoop = field(repr=False)
    _thread: threading.Thread = field(repr=False)
    _acceptor: asyncssh.SSHAcceptor = field(repr=False)
    _connections: set[asyncssh.SSHServerConnection] = field(repr=False)
    logins: list[str] = field(default_factory=list)
    """User names of the logins that succeeded, in order (a test can tell no credential got through)."""
    _stopped: bool = False

    @property
    def host_key_line(self) -> str:
        """The server's public host key as an OpenSSH line: ``"ssh-ed25519 AAAA..."``."""
        return public_key_line(self.host_key)

    def folder(self, user: str) -> Path:
        """What ``user`` sees as ``/``, on this machine's filesystem."""
        return self.root / user

    def stop(self) -> None:
        """Close the listener and every open connection, then end the loop and its thread."""
        if self._stopped:
            return
        self._stopped = True

        async def shutdown() -> None:
            self._acceptor.close()
            await self._acceptor.wait_closed()
            for conn in list(self._connections):
                conn.close()
                await conn.wait_closed()
            await self._loop.shutdown_default_executor()  # the thread that resolved the listen address

        try:
            asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(timeout=10)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
            if not self._thread.is_alive():
                self._loop.close()

    def __enter__(self) -> SFTPTestServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_sftp_server(root: Path, users: dict[str, dict[str, Any]]) -> SFTPTestServer:
    """Start a server for ``users`` (name → {"password": str, "public_key": SSHKey | OpenSSH
    line | list of them}); each sees ``root/<name>`` only. Returns once it is listening."""
    root = Path(root).resolve()
    for name in users:
        (root / name).mkdir(parents=True, exist_ok=True)
    host_key = asyncssh.generate_private_key("ssh-ed25519")
    connections: set[asyncssh.SSHServerConnection] = set()
    logins: list[str] = []

    def sftp_factory(chan: asyncssh.SSHServerChannel) -> asyncssh.SFTPServer:
        username = chan.get_extra_info("username")
        return JailedSFTPServer(chan, root / username)

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="sftp-test-server", daemon=True)
    thread.start()

    async def listen() -> asyncssh.SSHAcceptor:
        # asyncssh.create_server returns an awaitable wrapper, not a coroutine: await it here
        return await asyncssh.create_server(
            lambda: _SSHServer(users, connections, logins),
            HOST,
            0,  # a free port, reported by the acceptor
            server_host_keys=[host_key],
            sftp_factory=sftp_factory,
            allow_scp=False,
        )

    try:
        acceptor = asyncio.run_coroutine_threadsafe(listen(), loop).result(timeout=10)
    except BaseException:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()
        raise
    return SFTPTestServer(
        root=root,
        host=HOST,
        port=acceptor.get_port(),
        host_key=host_key,
        _loop=loop,
        _thread=thread,
        _acceptor=acceptor,
        _connections=connections,
        logins=logins,
    )
