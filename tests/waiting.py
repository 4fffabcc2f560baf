"""Waiting on progress: a test waits while what it watches keeps changing, and fails only when it stops."""

import time


def wait_advancing(read, done, what: str, stall_s: float = 300, poll_s: float = 0.3):
    """Poll ``read()`` until ``done(value)``; fails only when the value stops changing for ``stall_s``."""
    last, changed = object(), time.monotonic()
    while True:
        value = read()
        if done(value):
            return value
        if value != last:
            last, changed = value, time.monotonic()
        assert time.monotonic() - changed < stall_s, f"no progress for {stall_s:.0f} s waiting for {what}: {value}"
        time.sleep(poll_s)
