"""Waiting in tests for something that happens elsewhere (a broker, a database, a hub process), by polling.

Test modules import it as they import ``services`` (tests/ is on sys.path, see tests/conftest.py):
``from waiting import wait_for``. A loop of a few lines, not a retry library: a test waits for a
condition and fails as an assertion naming it, it never retries a call that raised.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(check: Callable[[], T], timeout: float, what: str, *, every: float = 0.05) -> T:
    """Call ``check`` every ``every`` seconds until it returns something truthy, and return that.

    Past ``timeout`` seconds (after one last call), fail naming ``what`` and, when it says more than
    "no", what ``check`` returned last.
    """
    deadline = time.monotonic() + timeout
    while True:
        last = check()
        if last:
            return last
        if time.monotonic() >= deadline:
            # a bool or None says only "not yet"; a count, a list or a state says how far it got
            shown = "" if last is None or isinstance(last, bool) else f" (last: {last!r})"
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}{shown}")
        time.sleep(every)


def seconds_until(check: Callable[[], object], timeout: float, what: str, *, every: float = 0.05) -> float:
    """The seconds until ``check`` returns something truthy, for tests that report how long recovery
    took; fails as :func:`wait_for` does."""
    start = time.monotonic()
    wait_for(check, timeout, what, every=every)
    return time.monotonic() - start
