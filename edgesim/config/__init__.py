"""The edge's configuration: frozen schema values and the loader that builds them from files."""

from edgesim.config.functions import config_warnings
from edgesim.config.loader import load_config, parse_config, parse_listen, parse_size, quick_config
from edgesim.config.schema import Config, CustomErrorResponse, OriginGroup

__all__ = [
    "Config",
    "CustomErrorResponse",
    "OriginGroup",
    "config_warnings",
    "load_config",
    "parse_config",
    "parse_listen",
    "parse_size",
    "quick_config",
]
