"""The Datadog source: ``source`` (config, registry entry), ``collector``, ``demo``."""
