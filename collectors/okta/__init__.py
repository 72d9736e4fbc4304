"""The Okta source: ``source`` (config, registry entry), ``collector``, ``api``, ``demo``."""
