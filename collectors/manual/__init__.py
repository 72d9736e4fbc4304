"""Manual evidence: ``source`` (registry entry), ``collector``, ``demo``."""
