"""The GitHub source: ``source`` (config, registry entry), ``collector``, ``graphql``, ``demo``."""
