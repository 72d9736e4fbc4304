"""A reproducible random sample of a population: the same bundles, period, size and seed give
the same items, on any machine and any Python version.

The algorithm (``ALGORITHM``), so that anyone can re-perform the selection:

1. the population's rows in their order: sorted by (event time, key), the order of
   ``populations/<name>.csv`` in the export (row 1 = item 1);
2. a Mersenne Twister (Python's ``random.Random``) seeded with the integer whose big-endian bytes
   are the SHA-256 of the seed's UTF-8 text: ``random.Random(int.from_bytes(sha256(seed), "big"))``
   (integer seeding and ``random()`` are the parts of Python's generator its documentation
   promises to keep stable);
3. a partial Fisher-Yates shuffle of the item numbers 1..n that uses ``random()`` only: for
   k = 0 .. size-1, j = k + floor(random() * (n - k)), swap positions k and j; the first ``size``
   positions are the sample, in the order drawn.

A size larger than the population takes every item (in population order), and says so: an
auditor then tests the whole population.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import random
from dataclasses import dataclass
from typing import Any

from attest.errors import UsageError
from attest.model import sha256_bytes
from reports.populations import Table

ALGORITHM = ("attest-sample/1: rows sorted by (event time, key); "
             "random.Random(int.from_bytes(sha256(seed UTF-8), 'big')) (MT19937); partial "
             "Fisher-Yates over items 1..n with j = k + floor(random() * (n - k))")


def rng(seed: str) -> random.Random:
    return random.Random(int.from_bytes(hashlib.sha256(seed.encode("utf-8")).digest(), "big"))


def draw(n: int, size: int, seed: str) -> list[int]:
    """Item numbers (1-based) of a sample of ``size`` out of ``n``, in the order drawn."""
    if size >= n:
        return list(range(1, n + 1))
    generator = rng(seed)
    items = list(range(1, n + 1))
    for k in range(size):
        j = k + int(generator.random() * (n - k))
        items[k], items[j] = items[j], items[k]
    return items[:size]


@dataclass(frozen=True)
class Sample:
    table: Table
    seed: str
    size_requested: int
    picks: list[int]                   # item numbers, in the order drawn

    @property
    def whole_population(self) -> bool:
        return self.size_requested >= len(self.table.rows)

    def rows(self) -> list[dict[str, Any]]:
        """The sampled rows, each with ``pick`` (order drawn) and ``item`` (row of the CSV)."""
        return [{"pick": i + 1, "item": item, **self.table.rows[item - 1]}
                for i, item in enumerate(self.picks)]

    def header(self) -> dict[str, Any]:
        t = self.table
        return {"population": t.name, "title": t.population.title,
                "period": {"from": t.start.isoformat(), "to": t.end.isoformat()},
                "seed": self.seed, "algorithm": ALGORITHM,
                "population_size": len(t.rows), "size_requested": self.size_requested,
                "size": len(self.picks), "whole_population": self.whole_population,
                "population_sha256": sha256_bytes(t.to_csv()),
                "population_file": f"populations/{t.name}.csv", "coverage": list(t.coverage)}

    def to_json(self) -> dict[str, Any]:
        return {**self.header(), "items": self.rows()}

    def columns(self) -> list[str]:
        return ["pick", "item", *self.table.population.all_columns]


def sample(table: Table, size: int, seed: str) -> Sample:
    """Draw ``size`` items of ``table`` with ``seed`` (see the module doc)."""
    if size < 1:
        raise UsageError(f"--size {size}: must be at least 1")
    if not table.rows:
        why = "; ".join(table.coverage) or "no rows"
        raise UsageError(f"the {table.name} population of {table.start} to {table.end} has no items, "
                         f"nothing to sample ({why})"[:600])
    return Sample(table, seed, size, draw(len(table.rows), size, seed))


def render(drawn: Sample, fmt: str) -> str:
    """The sample as ``json``, ``csv`` (the sample's facts repeated on every row, so the file
    stands alone) or ``table`` (plain text)."""
    if fmt == "json":
        return json.dumps(drawn.to_json(), indent=2, ensure_ascii=False) + "\n"
    head = drawn.header()
    if fmt == "csv":
        facts = {"sample_seed": drawn.seed, "sample_algorithm": ALGORITHM,
                 "population_size": head["population_size"],
                 "population_sha256": head["population_sha256"],
                 "period": f"{head['period']['from']}..{head['period']['to']}"}
        buf = io.StringIO()
        writer = csv.DictWriter(buf, [*drawn.columns(), *facts], lineterminator="\n",
                                extrasaction="ignore")
        writer.writeheader()
        for row in drawn.rows():
            writer.writerow({**{k: "" if v is None else v for k, v in row.items()}, **facts})
        return buf.getvalue()
    return _table(drawn, head)


def _table(drawn: Sample, head: dict[str, Any]) -> str:
    pop = drawn.table.population
    shown = list(pop.brief or (pop.when, *pop.key))
    lines = [f"{head['title']} ({pop.name}), {head['period']['from']} to {head['period']['to']}",
             f"{head['size']} of {head['population_size']} item(s), seed {drawn.seed!r}"
             + (" (every item: the population is no larger than --size)"
                if drawn.whole_population else ""),
             f"population sha256 {head['population_sha256']} ({head['population_file']} in the "
             "export)", f"algorithm: {ALGORITHM}", ""]
    for row in drawn.rows():
        facts = "  ".join(f"{c}={row.get(c)}" for c in shown if row.get(c) not in (None, ""))
        lines.append(f"#{row['pick']}  item {row['item']}  {facts}")
        lines.append(f"    evidence {row['bundle']}/{row['evidence_file']}  sha256 "
                     f"{row['evidence_sha256']}")
    return "\n".join(lines) + "\n"
