"""The drop zone as a Dagster resource (local folder now; S3 and SFTP share the interface)."""

import dagster as dg

from herald.dropzone import DropZone, open_dropzone
from herald.settings import Settings


class DropZoneResource(dg.ConfigurableResource):
    """Where clients leave packets, from HERALD_DROPZONE_URL at run time."""

    def get(self) -> DropZone:
        return open_dropzone(Settings.from_env().dropzone)
