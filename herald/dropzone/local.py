"""A drop zone in a local folder (the embedded default)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from herald.dropzone.base import (
    ARCHIVE,
    INCOMING,
    QUARANTINE,
    SEGMENT_RE,
    SIDECAR_SUFFIXES,
    DropZone,
    DropZoneError,
    PendingPacket,
    parse_checksum_sidecar,
)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


class LocalDropZone(DropZone):
    def __init__(self, root: Path):
        self.root = root.resolve()
        self.url = self.root.as_uri()

    def _path(self, zone_path: str) -> Path:
        path = (self.root / zone_path).resolve()
        if self.root not in path.parents:
            raise DropZoneError(f"{zone_path!r} is outside the drop zone {self.root}")
        return path

    @staticmethod
    def _parts(zone_path: str) -> tuple[str, str, str, str]:
        """``<client>/<area>/<packet type>/<file>`` → its four parts."""
        parts = zone_path.split("/")
        if len(parts) != 4 or not all(parts):
            raise DropZoneError(f"{zone_path!r} is not <client>/<area>/<packet type>/<file>")
        client_id, area, packet_type, name = parts
        return client_id, area, packet_type, name

    def clients(self) -> Iterator[str]:
        if not self.root.is_dir():
            return
        for entry in sorted(self.root.iterdir()):
            if entry.is_dir() and not entry.is_symlink() and SEGMENT_RE.match(entry.name):
                yield entry.name

    def list_pending(self, known: dict[str, str] | None = None) -> list[PendingPacket]:
        known = known or {}
        found: list[PendingPacket] = []
        for client_id in self.clients():
            incoming = self.root / client_id / INCOMING
            if not incoming.is_dir():
                continue
            for type_dir in sorted(p for p in incoming.iterdir() if p.is_dir() and not p.is_symlink()):
                if not SEGMENT_RE.match(type_dir.name):
                    continue
                for file in sorted(type_dir.iterdir()):
                    if not file.is_file() or file.is_symlink() or file.name.startswith("."):
                        continue
                    if file.name.endswith(SIDECAR_SUFFIXES):
                        continue
                    found.append(self._pending(client_id, type_dir.name, file, known))
        return found

    def _pending(self, client_id: str, packet_type: str, file: Path, known: dict[str, str]) -> PendingPacket:
        stat = file.stat()
        zone_path = f"{client_id}/{INCOMING}/{packet_type}/{file.name}"
        sha_sidecar, md5_sidecar = file.with_name(file.name + ".sha256"), file.with_name(file.name + ".md5")
        manifest = file.with_name(file.name + ".manifest.json")
        sha256 = md5 = None
        source = "computed"
        if sha_sidecar.is_file():
            sha256, source = parse_checksum_sidecar(sha_sidecar.read_text(errors="replace")), "sidecar-sha256"
        elif md5_sidecar.is_file():
            md5, source = parse_checksum_sidecar(md5_sidecar.read_text(errors="replace")), "sidecar-md5"
        elif known.get(zone_path) != f"{stat.st_size}:{stat.st_mtime_ns // 1000}":
            sha256 = sha256_of(file)  # hashing only what has not been seen before
        manifest_rows = None
        if manifest.is_file():
            try:
                manifest_rows = int(json.loads(manifest.read_text())["row_count"])
            except (ValueError, KeyError, TypeError) as exc:
                raise DropZoneError(f"{zone_path}.manifest.json must hold {{\"row_count\": N}}: {exc}") from exc
        return PendingPacket(
            client_id=client_id,
            packet_type=packet_type,
            file_name=file.name,
            zone_path=zone_path,
            size_bytes=stat.st_size,
            mtime_us=stat.st_mtime_ns // 1000,
            sha256=sha256,
            md5=md5,
            checksum_source=source,
            manifest_rows=manifest_rows,
        )

    @contextmanager
    def fetch(self, zone_path: str) -> Iterator[Path]:
        path = self._path(zone_path)
        if not path.is_file():
            raise DropZoneError(f"{zone_path} is not in the drop zone {self.root}")
        yield path

    def locate(self, zone_path: str, packet_id: str) -> str:
        if self._path(zone_path).is_file():
            return zone_path
        client_id, _, packet_type, name = self._parts(zone_path)
        for area in (ARCHIVE, QUARANTINE):
            candidate = f"{client_id}/{area}/{packet_type}/{packet_id}__{name}"
            if self._path(candidate).is_file():
                return candidate
        raise DropZoneError(f"packet {packet_id}: {zone_path} is neither incoming nor archived in {self.root}")

    def _move(self, zone_path: str, packet_id: str, area: str) -> tuple[str, Path]:
        source = self._path(zone_path)
        client_id, current_area, packet_type, name = self._parts(zone_path)
        if current_area != INCOMING:
            return zone_path, source  # already filed (a re-run of a processed packet)
        target_rel = f"{client_id}/{area}/{packet_type}/{packet_id}__{name}"
        target = self._path(target_rel)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(source, target)
        for suffix in (".sha256", ".md5", ".manifest.json"):
            sidecar = source.with_name(source.name + suffix)
            if sidecar.exists():
                os.replace(sidecar, target.with_name(target.name + suffix))
        return target_rel, target

    def archive(self, zone_path: str, packet_id: str) -> str:
        return self._move(zone_path, packet_id, ARCHIVE)[0]

    def quarantine(self, zone_path: str, packet_id: str, reason: str) -> str:
        rel, target = self._move(zone_path, packet_id, QUARANTINE)
        target.with_name(target.name + ".reason.txt").write_text(reason + "\n", encoding="utf-8")
        return rel

    def put(self, local_file: Path, client_id: str, packet_type: str, name: str | None = None) -> str:
        if not SEGMENT_RE.match(client_id) or not SEGMENT_RE.match(packet_type):
            raise DropZoneError("client id and packet type must be lower-case letters, digits and underscores")
        name = name or local_file.name
        if "/" in name or name.startswith(".") or name.endswith(SIDECAR_SUFFIXES):
            raise DropZoneError(f"{name!r} cannot be used as a packet file name")
        folder = self.root / client_id / INCOMING / packet_type
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / name
        if target.exists():
            raise DropZoneError(f"{client_id}/{INCOMING}/{packet_type}/{name} is already waiting to be ingested")
        # sidecar first, then the file by an atomic rename: the sensor never sees a half-written file
        temp = folder / f".{name}.part"
        shutil.copyfile(local_file, temp)
        target.with_name(name + ".sha256").write_text(f"{sha256_of(temp)}  {name}\n")
        os.replace(temp, target)
        return f"{client_id}/{INCOMING}/{packet_type}/{name}"
