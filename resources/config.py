"""The configuration-as-code directory as a Dagster resource."""

import dagster as dg

from herald.config import Deployment, load_deployment
from herald.settings import Settings


class HeraldConfigResource(dg.ConfigurableResource):
    """Clients, load maps and defaults from HERALD_CONFIG_DIR, validated on every load."""

    def load(self) -> Deployment:
        return load_deployment(Settings.from_env().config_dir)
