"""Herald's settings (HERALD_HOME, the warehouse, the drop zone) as a Dagster resource."""

import dagster as dg

from herald.settings import Settings


class HeraldSettingsResource(dg.ConfigurableResource):
    """The ``HERALD_*`` settings, read from the environment each time a run or a sensor
    evaluation asks (never at import), so a long-lived process always sees the current ones."""

    def get(self) -> Settings:
        return Settings.from_env()
