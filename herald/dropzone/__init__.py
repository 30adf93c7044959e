"""Drop zones: where clients leave packets (one interface; local folder, S3 and SFTP)."""

from herald.dropzone.base import DropZone, DropZoneError, Entry, PendingPacket
from herald.dropzone.local import LocalDropZone
from herald.settings import DropZoneTarget


def open_dropzone(target: DropZoneTarget) -> DropZone:
    """The drop zone a :class:`DropZoneTarget` names (remote clients are imported on demand)."""
    if target.kind == "local" and target.local_root is not None:
        return LocalDropZone(target.local_root)
    if target.kind == "s3":
        from herald.dropzone.s3 import S3DropZone

        return S3DropZone(target)
    if target.kind == "sftp":
        from herald.dropzone.sftp import SFTPDropZone

        return SFTPDropZone(target)
    raise DropZoneError(f"drop zone kind {target.kind!r} is not available")


__all__ = ["DropZone", "DropZoneError", "Entry", "LocalDropZone", "PendingPacket", "open_dropzone"]
