"""The stack configuration: the public contract of `orthgate:*` keys."""

from orthgate.components.config.errors import ConfigError, Problem, key_path
from orthgate.components.config.network import NetworkSettings, SiteToSiteVpnSettings
from orthgate.components.config.settings import Settings, load_settings, parse_settings

__all__ = [
    "ConfigError",
    "NetworkSettings",
    "Problem",
    "Settings",
    "SiteToSiteVpnSettings",
    "key_path",
    "load_settings",
    "parse_settings",
]
