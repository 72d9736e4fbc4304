"""Stage 1: collectors fetch raw evidence and judge nothing; one package per source.

Which sources exist is the registry's business (:mod:`attest.sources`); this package holds them.
"""
