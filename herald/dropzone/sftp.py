"""A drop zone on an SFTP server (paramiko client).

The layout rules live in :class:`~herald.dropzone.base.DropZone`; this module only maps the
storage primitives onto SFTP requests under the target's root folder (``prefix``: an absolute
folder such as ``/srv/drops``, or ``""`` for the login folder).

Secrets are read from the environment when the zone connects, never from the URL:

``HERALD_SFTP_PASSWORD``        password login
``HERALD_SFTP_KEY_FILE``        private key file (OpenSSH/PEM; ed25519, ECDSA or RSA)
``HERALD_SFTP_KEY_PASSPHRASE``  the key file's passphrase, when it has one
``HERALD_SFTP_HOST_KEY``        the server's public host key, ``"ssh-ed25519 AAAA..."`` (required)

The host key must be pinned: a server offering no pinned key is refused, and the error names
the key it offered so an operator can check it out-of-band and pin it. Nothing is ever trusted
on first use (paramiko's ``AutoAddPolicy`` is not used anywhere).

Notes on what SFTP (version 3, all paramiko speaks) can and cannot do:

* modification times come in whole seconds, so ``mtime_us`` is a multiple of 1,000,000;
* uploads go to a hidden ``.<name>.part`` file renamed into place with the ``posix-rename``
  extension (an atomic ``rename(2)`` on OpenSSH servers), so a sensor listing the folder
  never sees a half-written packet;
* symbolic links are left out of listings and are not reported as existing files: a link in a
  client's folder could point anywhere on the server.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import hashlib
import logging
import os
import posixpath
import shutil
import socket
import stat
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

import paramiko
from paramiko.hostkeys import HostKeyEntry

from herald.dropzone.base import DropZone, DropZoneError, Entry
from herald.settings import DropZoneTarget

__all__ = [
    "ENV_SFTP_HOST_KEY",
    "ENV_SFTP_KEY_FILE",
    "ENV_SFTP_KEY_PASSPHRASE",
    "ENV_SFTP_PASSWORD",
    "SFTPDropZone",
    "host_key_fingerprint",
]

ENV_SFTP_PASSWORD = "HERALD_SFTP_PASSWORD"
ENV_SFTP_KEY_FILE = "HERALD_SFTP_KEY_FILE"
ENV_SFTP_KEY_PASSPHRASE = "HERALD_SFTP_KEY_PASSPHRASE"
ENV_SFTP_HOST_KEY = "HERALD_SFTP_HOST_KEY"

CONNECT_TIMEOUT_S = 15.0
# a request that gets no answer for this long means a hung server: fail instead of blocking a
# sensor or a run forever
OPERATION_TIMEOUT_S = 120.0
KEEPALIVE_S = 30
CHUNK = 1 << 20

log = logging.getLogger(__name__)


def host_key_fingerprint(key: paramiko.PKey) -> str:
    """``SHA256:<base64>``, exactly as ``ssh-keygen -lf`` and OpenSSH's prompts print it."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode("ascii").rstrip("=")


class _UnknownHostKey(paramiko.SSHException):
    """Raised by :class:`_RejectAndRemember`; carries the key the server offered."""

    def __init__(self, key: paramiko.PKey):
        super().__init__("unknown host key")
        self.key = key


class _RejectAndRemember(paramiko.RejectPolicy):
    """paramiko's RejectPolicy, but the refusal keeps the offered key so the error can show its
    fingerprint (what an operator needs to check it and pin it)."""

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> NoReturn:
        raise _UnknownHostKey(key)


class SFTPDropZone(DropZone):
    """The drop zone in a folder of an SFTP server.

    One SSH connection and one SFTP session are opened on first use and reused until
    :meth:`close`; a session found dead (server restart, idle timeout) is reopened once on the
    next call. Meant to be used from one thread at a time, like a paramiko ``SFTPClient``.
    """

    def __init__(
        self,
        target: DropZoneTarget,
        *,
        password: str | None = None,
        key_file: str | os.PathLike[str] | None = None,
        host_key: str | None = None,
    ):
        if target.kind != "sftp":
            raise DropZoneError(f"{target.url} is not an SFTP drop zone (kind {target.kind!r})")
        if not target.host or not target.user:
            raise DropZoneError(f"{target.url} needs a user and a host (sftp://user@host:port/path)")
        self.target = target
        self.url = target.url
        self.host = target.host
        self.port = target.port
        self.user = target.user
        self.root = target.prefix.rstrip("/")  # "" = the login folder
        # explicit arguments win; None means "read the environment when connecting"
        self._password = password
        self._key_file = key_file
        self._host_key = host_key
        self._client: paramiko.SSHClient | None = None
        self._sftp: paramiko.SFTPClient | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:  # never the secrets
        return f"SFTPDropZone({self.url!r})"

    @property
    def where(self) -> str:
        return f"{self.user}@{self.host}:{self.port}"

    # --- connection ----------------------------------------------------------------------------

    def _pinned_host_keys(self) -> paramiko.HostKeys:
        """The pinned key(s) as a paramiko HostKeys table under the name paramiko looks up
        (``[host]:port`` unless the port is 22). Several keys may be given, one per line."""
        text = self._host_key if self._host_key is not None else os.environ.get(ENV_SFTP_HOST_KEY, "")
        keys = paramiko.HostKeys()
        name = self.host if self.port == 22 else f"[{self.host}]:{self.port}"
        for line in text.strip().splitlines():
            fields = line.split()
            if not fields:
                continue
            try:
                entry = HostKeyEntry.from_line(" ".join([name, *fields[:2]]))
            except Exception:  # bad base64 and the like: paramiko's own classes vary by version
                entry = None
            if entry is None or entry.key is None:
                raise DropZoneError(
                    f"{ENV_SFTP_HOST_KEY} for {self.host}:{self.port} holds {line.strip()[:40]!r}..., not an "
                    "OpenSSH public key line like 'ssh-ed25519 AAAA...' (the server's /etc/ssh/ssh_host_*_key.pub)"
                )
            keys.add(name, entry.key.get_name(), entry.key)
        return keys

    def _private_key(self) -> paramiko.PKey | None:
        key_file = self._key_file if self._key_file is not None else os.environ.get(ENV_SFTP_KEY_FILE) or None
        if not key_file:
            return None
        passphrase = os.environ.get(ENV_SFTP_KEY_PASSPHRASE) or None
        try:
            # bytes: paramiko hands it straight to cryptography, which refuses str
            return paramiko.PKey.from_path(str(key_file), passphrase.encode() if passphrase else None)
        except FileNotFoundError:
            raise DropZoneError(f"{ENV_SFTP_KEY_FILE}: no private key file at {key_file}") from None
        except (paramiko.PasswordRequiredException, TypeError):
            # cryptography raises TypeError (not paramiko's exception) for an encrypted key given no passphrase
            raise DropZoneError(
                f"the private key {key_file} is encrypted: set its passphrase in {ENV_SFTP_KEY_PASSPHRASE}"
            ) from None
        except (paramiko.SSHException, ValueError, OSError) as exc:
            if passphrase is not None:
                # a wrong passphrase surfaces as a misleading parse error: say what to check instead
                raise DropZoneError(
                    f"cannot load the private key {key_file}: wrong passphrase in {ENV_SFTP_KEY_PASSPHRASE}, "
                    "or not an OpenSSH/PEM private key file"
                ) from None
            raise DropZoneError(
                f"cannot load the private key {key_file} from {ENV_SFTP_KEY_FILE}: not a private key paramiko "
                f"can read ({type(exc).__name__}: {exc})"
            ) from None

    def _connect(self) -> paramiko.SFTPClient:
        host_keys = self._pinned_host_keys()
        pkey = self._private_key()
        password = self._password if self._password is not None else os.environ.get(ENV_SFTP_PASSWORD) or None
        if pkey is None and password is None:
            raise DropZoneError(
                f"no credentials for {self.where}: set {ENV_SFTP_KEY_FILE} (a private key) or {ENV_SFTP_PASSWORD}"
            )
        # how we tried, for messages and logs: which key file and where the password came from, never
        # the secret itself
        tried = []
        if pkey is not None:
            tried.append(f"key {self._key_file or os.environ.get(ENV_SFTP_KEY_FILE)}")
        if password is not None:
            tried.append("password" + ("" if self._password is not None else f" from {ENV_SFTP_PASSWORD}"))
        method = ", then ".join(tried)

        client = paramiko.SSHClient()
        # only the pinned keys: never ~/.ssh/known_hosts of whoever runs Herald, never AutoAdd
        for name, by_type in host_keys.items():
            for key in by_type.values():
                client.get_host_keys().add(name, key.get_name(), key)
        client.set_missing_host_key_policy(_RejectAndRemember())
        try:
            client.connect(
                self.host,
                port=self.port,
                username=self.user,
                password=password,
                pkey=pkey,
                look_for_keys=False,  # only the credentials Herald was given
                allow_agent=False,
                timeout=CONNECT_TIMEOUT_S,
                banner_timeout=CONNECT_TIMEOUT_S,
                auth_timeout=CONNECT_TIMEOUT_S,
            )
            sftp = client.open_sftp()
            sftp.get_channel().settimeout(OPERATION_TIMEOUT_S)
            transport = client.get_transport()
            if transport is not None:
                # a sensor keeps this connection between ticks: keepalives stop firewalls/NAT from
                # silently dropping it, and a dead one is noticed and reopened
                transport.set_keepalive(KEEPALIVE_S)
        except _UnknownHostKey as exc:
            client.close()
            raise DropZoneError(self._host_key_message(exc.key, pinned=None)) from None
        except paramiko.BadHostKeyException as exc:
            client.close()
            raise DropZoneError(self._host_key_message(exc.key, pinned=exc.expected_key)) from None
        except paramiko.AuthenticationException:
            client.close()
            # the exception's text can echo what the server said; ours names who and how, no secret
            raise DropZoneError(
                f"authentication failed for {self.where} (tried {method}): check the user name and the "
                f"credentials in {ENV_SFTP_KEY_FILE} / {ENV_SFTP_PASSWORD}"
            ) from None
        except TimeoutError:  # socket.timeout is the same class since Python 3.10
            client.close()
            raise DropZoneError(f"cannot reach the SFTP server {self.host}:{self.port}: timed out") from None
        except socket.gaierror as exc:
            client.close()
            raise DropZoneError(f"cannot reach the SFTP server {self.host}:{self.port}: {exc.strerror}") from None
        except paramiko.ssh_exception.NoValidConnectionsError as exc:
            client.close()
            reasons = "; ".join(sorted({e.strerror or str(e) for e in exc.errors.values()}))
            raise DropZoneError(
                f"cannot reach the SFTP server {self.host}:{self.port}: {reasons or 'connection refused'}"
            ) from None
        except OSError as exc:
            client.close()
            raise DropZoneError(
                f"cannot reach the SFTP server {self.host}:{self.port}: {exc.strerror or exc}"
            ) from None
        except paramiko.SSHException as exc:
            client.close()
            # protocol trouble: not an SSH server on that port, no common algorithms, SFTP refused
            raise DropZoneError(f"SSH/SFTP with {self.where} failed: {exc}") from None
        self._client = client
        transport = client.get_transport()
        offered = transport.get_remote_server_key() if transport else None
        log.info(
            "connected to SFTP %s by %s (host key %s %s)",
            self.where,
            method,
            offered.get_name() if offered else "?",
            host_key_fingerprint(offered) if offered else "?",
        )
        return sftp

    def _host_key_message(self, offered: paramiko.PKey, pinned: paramiko.PKey | None) -> str:
        message = (
            f"unknown host key for {self.host}:{self.port}: the server offered {offered.get_name()} "
            f"{host_key_fingerprint(offered)}; pin it in {ENV_SFTP_HOST_KEY}"
        )
        if pinned is None:
            return message + " (no key is pinned; check the fingerprint with the server's owner first)"
        return message + (
            f" (the pinned {pinned.get_name()} {host_key_fingerprint(pinned)} does not match: if the server's "
            "key was not changed on purpose, someone may be in the way)"
        )

    def _session(self) -> paramiko.SFTPClient:
        with self._lock:
            transport = self._client.get_transport() if self._client else None
            if self._sftp is not None and transport is not None and transport.is_active():
                return self._sftp
            self._drop()  # a dead session (server restart, idle timeout): open a fresh one
            self._sftp = self._connect()
            return self._sftp

    def _drop(self) -> None:
        sftp, client = self._sftp, self._client
        self._sftp = self._client = None
        for closeable in (sftp, client):
            if closeable is not None:
                # closing a broken connection must not hide the real error
                with contextlib.suppress(Exception):
                    closeable.close()

    def close(self) -> None:
        with self._lock:
            self._drop()

    def __enter__(self) -> SFTPDropZone:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def check(self) -> str:
        """Connect, list the root folder, and describe what was found in one line."""
        sftp = self._session()
        root = self._remote("")
        try:
            info = sftp.stat(root)
        except FileNotFoundError:
            raise DropZoneError(
                f"the drop zone's root {self._shown(root)} does not exist on {self.where}: create it, or fix the "
                "path in HERALD_DROPZONE_URL"
            ) from None
        except (OSError, EOFError, paramiko.SSHException) as exc:
            self._fail(exc, "open", "")
        if not stat.S_ISDIR(info.st_mode or 0):
            raise DropZoneError(f"the drop zone's root {self._shown(root)} on {self.where} is not a folder")
        entries = self._list("")
        clients = [e.name for e in entries if e.is_dir]
        transport = self._client.get_transport() if self._client else None
        offered = transport.get_remote_server_key() if transport else None
        key = f"{offered.get_name()} {host_key_fingerprint(offered)}" if offered else "unknown"
        listed = f": {', '.join(clients[:10])}{' …' if len(clients) > 10 else ''}" if clients else ""
        return (
            f"{self.url}: connected as {self.where}, host key {key} (pinned), "
            f"root {self._shown(root)} holds {len(clients)} client folder(s){listed}"
        )

    # --- paths and errors ------------------------------------------------------------------------

    def _remote(self, path: str) -> str:
        """The server path for a zone path (``''`` is the zone's root)."""
        parts = [p for p in path.split("/") if p]
        if path.startswith("/") or ".." in parts or "." in parts:
            raise DropZoneError(f"{path!r} is outside the drop zone {self.url}: '..' and absolute paths are refused")
        if not parts:
            return self.root or "."
        return posixpath.join(self.root, *parts) if self.root else posixpath.join(*parts)

    def _no_links(self, sftp: paramiko.SFTPClient, path: str) -> None:
        """Refuse a zone path with a symbolic link at any level (lstat each one, the way a
        listing sees them): the server would follow it anywhere, even into another client's
        folder. Levels that do not exist yet (a first archive) end the walk."""
        parts = [p for p in path.split("/") if p]
        for depth in range(1, len(parts) + 1):
            level = "/".join(parts[:depth])
            try:
                mode = sftp.lstat(self._remote(level)).st_mode or 0
            except FileNotFoundError:
                return
            except (OSError, EOFError, paramiko.SSHException) as exc:
                self._fail(exc, "look up", level)
            if stat.S_ISLNK(mode):
                raise DropZoneError(f"{level} in {self.url} is a symbolic link: links are never followed")

    def _shown(self, remote: str) -> str:
        return "the login folder" if remote == "." else remote

    def _fail(self, exc: BaseException, action: str, path: str) -> NoReturn:
        """Turn what paramiko raised into a DropZoneError a person can act on."""
        where = f"{path} in {self.url}" if path else f"the root of {self.url}"
        if isinstance(exc, PermissionError) or getattr(exc, "errno", None) == errno.EACCES:
            raise DropZoneError(
                f"permission denied: cannot {action} {where} (the server refused {self.user}; "
                "check the folder's permissions, or the path leaves the user's allowed area)"
            ) from None
        if isinstance(exc, FileNotFoundError):
            raise DropZoneError(f"cannot {action} {where}: no such file or folder") from None
        if isinstance(exc, (EOFError, paramiko.SSHException, TimeoutError, ConnectionError)):
            self.close()  # the next call reconnects
            raise DropZoneError(
                f"lost the connection to {self.where} while trying to {action} {where}: {exc or type(exc).__name__}"
            ) from None
        raise DropZoneError(f"cannot {action} {where}: {exc}") from None

    def _makedirs(self, sftp: paramiko.SFTPClient, remote_dir: str) -> None:
        """mkdir -p: one stat when the folder exists (the usual case), else create each level."""
        if remote_dir in ("", ".", "/"):
            return
        try:
            if stat.S_ISDIR(sftp.stat(remote_dir).st_mode or 0):
                return
            raise DropZoneError(f"{remote_dir} on {self.where} exists but is not a folder")
        except FileNotFoundError:
            pass
        self._makedirs(sftp, posixpath.dirname(remote_dir))
        try:
            sftp.mkdir(remote_dir)
        except OSError:
            # another writer may have created it meanwhile: only then is this fine
            try:
                if stat.S_ISDIR(sftp.stat(remote_dir).st_mode or 0):
                    return
            except OSError:
                pass
            raise

    # --- storage primitives ----------------------------------------------------------------------

    def _list(self, folder: str) -> list[Entry]:
        remote = self._remote(folder)
        sftp = self._session()
        self._no_links(sftp, folder)
        try:
            attrs = sftp.listdir_attr(remote)
        except FileNotFoundError:
            return []
        except (OSError, EOFError, paramiko.SSHException) as exc:
            self._fail(exc, "list", folder)
        entries = []
        for a in sorted(attrs, key=lambda a: a.filename):
            mode = a.st_mode or 0
            # listdir_attr reports lstat attributes: a symbolic link is S_ISLNK, never followed
            if stat.S_ISDIR(mode):
                entries.append(Entry(a.filename, is_dir=True))
            elif stat.S_ISREG(mode):
                # SFTP v3 carries whole seconds only
                entries.append(Entry(a.filename, False, a.st_size or 0, int(a.st_mtime or 0) * 1_000_000))
            elif stat.S_ISLNK(mode):  # a link could point anywhere on the server: never followed
                self._refuse(f"{folder}/{a.filename}".lstrip("/"), "a symbolic link")
        return entries

    def _read_bytes(self, path: str, limit: int = 1 << 16) -> bytes | None:
        remote = self._remote(path)
        sftp = self._session()
        self._no_links(sftp, path)
        try:
            with sftp.open(remote, "rb") as f:
                return f.read(limit)
        except FileNotFoundError:
            return None
        except (OSError, EOFError, paramiko.SSHException) as exc:
            self._fail(exc, "read", path)

    def _write_bytes(self, path: str, data: bytes) -> None:
        remote = self._remote(path)
        sftp = self._session()
        self._no_links(sftp, path)
        temp = posixpath.join(posixpath.dirname(remote), f".{posixpath.basename(remote)}.part")
        try:
            self._makedirs(sftp, posixpath.dirname(remote))
            # small files too go through a hidden temp file: a sidecar is never seen half-written
            with sftp.open(temp, "wb") as f:
                f.write(data)
            sftp.posix_rename(temp, remote)
        except (OSError, EOFError, paramiko.SSHException) as exc:
            self._discard(temp)
            self._fail(exc, "write", path)

    @contextmanager
    def _download(self, path: str) -> Iterator[Path]:
        remote = self._remote(path)
        sftp = self._session()
        self._no_links(sftp, path)
        # a private folder keeps the file's own name (readers may look at its suffix)
        folder = Path(tempfile.mkdtemp(prefix="herald-sftp-"))
        try:
            local = folder / posixpath.basename(remote)
            try:
                with local.open("wb") as f:
                    sftp.getfo(remote, f)  # pipelined reads, written chunk by chunk: never whole in memory
            except (OSError, EOFError, paramiko.SSHException) as exc:
                self._fail(exc, "download", path)
            yield local
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def _upload(self, local_file: Path, path: str) -> None:
        remote = self._remote(path)
        sftp = self._session()
        self._no_links(sftp, path)
        temp = posixpath.join(posixpath.dirname(remote), f".{posixpath.basename(remote)}.part")
        try:
            self._makedirs(sftp, posixpath.dirname(remote))
            # hidden while it grows (listings skip dot files), then renamed into place in one step
            sftp.put(str(local_file), temp, confirm=True)
            sftp.posix_rename(temp, remote)
        except (OSError, EOFError, paramiko.SSHException) as exc:
            self._discard(temp)
            self._fail(exc, "upload to", path)

    def _move(self, source: str, target: str) -> None:
        remote_source, remote_target = self._remote(source), self._remote(target)
        sftp = self._session()
        self._no_links(sftp, source)
        self._no_links(sftp, target)
        try:
            self._makedirs(sftp, posixpath.dirname(remote_target))
            sftp.posix_rename(remote_source, remote_target)
        except (OSError, EOFError, paramiko.SSHException) as exc:
            self._fail(exc, f"move {source} to", target)

    def _exists(self, path: str) -> bool:
        remote = self._remote(path)
        sftp = self._session()
        self._no_links(sftp, path)
        try:
            # lstat, like the listings: a symbolic link is not a packet, wherever it points
            return stat.S_ISREG(sftp.lstat(remote).st_mode or 0)
        except FileNotFoundError:
            return False
        except (OSError, EOFError, paramiko.SSHException) as exc:
            self._fail(exc, "look up", path)

    def _sha256(self, path: str) -> str:
        remote = self._remote(path)
        sftp = self._session()
        self._no_links(sftp, path)
        digest = hashlib.sha256()
        try:
            with sftp.open(remote, "rb") as f:
                f.prefetch()  # pipelined reads: hashing runs at transfer speed, no temp file
                while chunk := f.read(CHUNK):
                    digest.update(chunk)
        except (OSError, EOFError, paramiko.SSHException) as exc:
            self._fail(exc, "read", path)
        return digest.hexdigest()

    def _discard(self, remote: str) -> None:
        """Best-effort removal of a temp file left by a failed transfer."""
        try:
            if self._sftp is not None:
                self._sftp.remove(remote)
        except Exception:
            pass
