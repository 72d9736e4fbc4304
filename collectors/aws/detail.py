"""Per-resource detail reads (per bucket, per snapshot, per load balancer...).

A listing is read whole or not at all; the reads about each listed resource then run
concurrently, and one that fails makes only that resource unknown: the record becomes
``partial`` with ``unknown = {resource id as the rules name it: why}``, and stays readable for
every other resource (the engine errors exactly those resources).
"""
from __future__ import annotations

import contextvars
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Iterable, TypeVar

from attest.model import EvidenceState
from collectors.aws.session import CallFailed

DETAIL_WORKERS = 8
T = TypeVar("T")


def read_each(items: Iterable[T], read: Callable[[T], Any], key: Callable[[T], str],
              workers: int = DETAIL_WORKERS) -> tuple[list[Any], dict[str, str]]:
    """``[read(item) ...]`` in the items' order, run ``workers`` at a time. An item whose read
    raises :class:`CallFailed` is left out and named in the second result, ``{key(item): why}``;
    any other exception propagates (it makes the whole record ``error``)."""
    items = list(items)

    def one(item: T) -> tuple[bool, Any]:
        try:
            return True, read(item)
        except CallFailed as exc:
            return False, exc.detail

    if len(items) > 1 and workers > 1:
        # each read runs in a copy of this thread's context: a call failing for good is listed
        # as concerning the evidence item being read here (attest.calls.reading)
        contexts = [contextvars.copy_context() for _ in items]
        with ThreadPoolExecutor(min(workers, len(items))) as pool:
            outcomes = list(pool.map(lambda item, context: context.run(one, item), items, contexts))
    else:
        outcomes = [one(item) for item in items]
    read_ok, unknown = [], {}
    for item, (ok, value) in zip(items, outcomes):
        if ok:
            read_ok.append(value)
        else:
            unknown[key(item)] = value
    return read_ok, unknown


def finish(payload: dict[str, Any], unknown: dict[str, str], noun: str) -> dict[str, Any]:
    """``payload``, or a ``partial`` failure carrying it when some resources are unknown."""
    if not unknown:
        return payload
    first = next(iter(sorted(unknown.items())))
    more = f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else ""
    raise CallFailed(EvidenceState.PARTIAL,
                     f"{noun}: {len(unknown)} could not be read: {first[0]}: {first[1]}{more}",
                     payload, unknown)


def chunks(items: list[T], size: int) -> Iterable[list[T]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]
