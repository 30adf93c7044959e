"""A drop zone in a local folder (the embedded default)."""

from __future__ import annotations

import errno
import os
import shutil
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from herald.dropzone.base import DropZone, DropZoneError, Entry, UnreadableFile, sha256_of

__all__ = ["LocalDropZone", "sha256_of"]


class LocalDropZone(DropZone):
    def __init__(self, root: Path):
        self.root = root.resolve()
        self.url = self.root.as_uri()

    def _path(self, zone_path: str) -> Path:
        """The file for a zone path, refusing a symbolic link at any level (checked with lstat,
        never followed: a link could lead into another client's folder or out of the zone)."""
        parts = [p for p in zone_path.split("/") if p]
        if zone_path.startswith("/") or ".." in parts or "." in parts:
            raise DropZoneError(f"{zone_path!r} is outside the drop zone {self.root}")
        path = self.root
        for depth, part in enumerate(parts, 1):
            path = path / part
            try:
                mode = path.lstat().st_mode
            except (FileNotFoundError, NotADirectoryError):
                return self.root.joinpath(*parts)  # nothing below a missing level can be a link
            except OSError as exc:
                if exc.errno != errno.ENAMETOOLONG:
                    raise
                return self.root.joinpath(*parts)  # a name no folder can hold: cannot exist either
            if stat.S_ISLNK(mode):
                raise UnreadableFile(
                    f"{'/'.join(parts[:depth])} in the drop zone {self.root} is a symbolic link: links are never followed"
                )
        return path

    def _list(self, folder: str) -> list[Entry]:
        path = self._path(folder)
        if not path.is_dir():
            return []
        entries = []
        for child in sorted(path.iterdir()):
            info = child.lstat()
            if stat.S_ISDIR(info.st_mode):
                entries.append(Entry(child.name, is_dir=True))
            elif stat.S_ISREG(info.st_mode):
                entries.append(Entry(child.name, False, info.st_size, info.st_mtime_ns // 1000))
            elif stat.S_ISLNK(info.st_mode):  # a link could point anywhere: never followed
                self._refuse(f"{folder}/{child.name}".lstrip("/"), "a symbolic link")
        return entries

    def _open(self, zone_path: str) -> int:
        """A read-only descriptor of the regular file at a zone path, opened one level at a time
        from the zone's root with ``O_NOFOLLOW``: a link swapped in at any level after the
        listing (a race the lstat checks alone cannot close) is refused by the kernel, never
        followed. ``O_NONBLOCK`` keeps a FIFO swapped in from blocking the opening."""
        self._path(zone_path)  # the friendly checks first: outside the zone, a link seen now
        parts = [p for p in zone_path.split("/") if p]
        folder = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY)
        try:
            for part in parts[:-1]:
                inner = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=folder)
                os.close(folder)
                folder = inner
            fd = os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=folder)
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                raise UnreadableFile(
                    f"{zone_path} in the drop zone {self.root} became a symbolic link: links are never followed"
                ) from exc
            if exc.errno in (errno.EACCES, errno.EPERM):
                raise UnreadableFile(f"{zone_path}: cannot be read: {exc.strerror}") from exc
            raise
        finally:
            os.close(folder)
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise UnreadableFile(f"{zone_path} in the drop zone {self.root} is not a regular file")
        os.set_blocking(fd, True)
        return fd

    def _read_bytes(self, path: str, limit: int = 1 << 16) -> bytes | None:
        if not self._exists(path):
            return None
        with os.fdopen(self._open(path), "rb") as f:
            return f.read(limit)

    def _write_bytes(self, path: str, data: bytes) -> None:
        file = self._path(path)
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_bytes(data)

    @contextmanager
    def _download(self, path: str) -> Iterator[Path]:
        """Already local, so no copy: the caller reads the very file :meth:`_open` opened,
        through the descriptor's own name (``/proc/self/fd/N``), whatever happens to the
        path meanwhile."""
        fd = self._open(path)
        try:
            yield Path(f"/proc/self/fd/{fd}")
        finally:
            os.close(fd)

    def _upload(self, local_file: Path, path: str) -> None:
        target = self._path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        temp = target.with_name(f".{target.name}.part")  # hidden: listings skip it
        shutil.copyfile(local_file, temp)
        os.replace(temp, target)

    def _move(self, source: str, target: str) -> None:
        destination = self._path(target)
        destination.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self._path(source), destination)

    def _exists(self, path: str) -> bool:
        try:
            return stat.S_ISREG(self._path(path).lstat().st_mode)
        except (FileNotFoundError, NotADirectoryError):
            return False
        except OSError as exc:
            if exc.errno == errno.ENAMETOOLONG:  # e.g. the sidecar of a name near the limit
                return False
            raise

    def _sha256(self, path: str) -> str:
        with self._download(path) as local:
            return sha256_of(local)
