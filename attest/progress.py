"""Progress: a live bar on a terminal, plain log lines otherwise (cron, CI, pipes)."""
from __future__ import annotations

import contextlib
import logging
import sys
import threading
from typing import Callable, Iterator

log = logging.getLogger("attest.progress")


@contextlib.contextmanager
def progress_reporter(enabled: bool | None = None) -> Iterator[Callable[[str], None]]:
    """Yield a ``step(text)`` callback. On a TTY it drives a rich spinner bar counting steps."""
    tty = sys.stderr.isatty() if enabled is None else enabled
    if not tty:
        count = 0
        lock = threading.Lock()

        def plain(step: str) -> None:
            nonlocal count
            with lock:
                count += 1
                n = count
            log.debug("step %d: %s", n, step)
        yield plain
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(pulse_style="cyan"),
                  MofNCompleteColumn(), transient=True) as bar:
        task = bar.add_task("collecting evidence", total=None)

        def fancy(step: str) -> None:
            bar.update(task, advance=1, description=f"collecting: {step[:60]}")
        yield fancy
