"""Drop zones: where clients leave packets (one interface, several implementations)."""

from herald.dropzone.base import DropZone, DropZoneError, PendingPacket
from herald.dropzone.local import LocalDropZone
from herald.settings import DropZoneTarget


def open_dropzone(target: DropZoneTarget) -> DropZone:
    """The drop zone a :class:`DropZoneTarget` names."""
    if target.kind == "local" and target.local_root is not None:
        return LocalDropZone(target.local_root)
    raise DropZoneError(f"drop zone kind {target.kind!r} is not available in this version")


__all__ = ["DropZone", "DropZoneError", "LocalDropZone", "PendingPacket", "open_dropzone"]
