"""Configuration as code: pydantic models, the canonical fields and the loader."""

from herald.config.loader import ConfigError, Problem, check_config, load_deployment
from herald.config.models import Client, Deployment, LoadMap

__all__ = ["Client", "ConfigError", "Deployment", "LoadMap", "Problem", "check_config", "load_deployment"]
