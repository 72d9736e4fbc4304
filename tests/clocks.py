"""A fake clock for the collectors' waits: each wait is recorded and moves the clock on, so that
no test really sleeps and a fake server reading the same clock sees the time pass."""
from __future__ import annotations


class FakeClock:
    def __init__(self, t: float = 1000.0) -> None:
        self.t = t
        self.waits: list[float] = []

    def __call__(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.t += seconds
