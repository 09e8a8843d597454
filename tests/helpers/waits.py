"""Bounded polling for tests: wait for a condition, say what was last seen."""
import time


def until(fn, timeout, interval=0.5, what='condition'):
    """Poll fn() until it returns a truthy value; bounded."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError('waited %.0fs for %s; last value %r' % (timeout, what, last))
