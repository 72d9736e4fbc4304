"""The AWS source: ``source`` (config, registry entry), ``collector``, ``demo``."""
