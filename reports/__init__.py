"""Stage 4: documents made from results.json and bundle manifests (never from live APIs)."""
