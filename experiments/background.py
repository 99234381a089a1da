"""Work in daemon threads, and leaving a process while such a thread may be inside XLA.

The study CLIs compile the next program (or compute the theory) in a daemon thread while
the current one runs, so Ctrl-C need not wait for it; but leaving through the
interpreter's shutdown while that thread is inside XLA can abort there.
"""

import concurrent.futures
import os
import sys
import threading
from collections.abc import Callable
from typing import Any


def settle(future: concurrent.futures.Future, fn: Callable[..., Any], *args: Any) -> None:
    """Sets ``future`` to ``fn(*args)``, or to the exception it raised."""
    try:
        future.set_result(fn(*args))
    except BaseException as error:
        future.set_exception(error)


def in_background(fn: Callable[..., Any], *args: Any) -> concurrent.futures.Future:
    """``fn(*args)`` in a daemon thread; its result (or exception) in the returned future."""
    future: concurrent.futures.Future = concurrent.futures.Future()
    threading.Thread(target=settle, args=(future, fn, *args), daemon=True).start()
    return future


def exit_process(status: int) -> None:
    """``sys.exit(status)``; after an interruption (130) ``os._exit``, skipping the shutdown
    that could abort inside a background thread's XLA call (every written file is
    complete: the studies write atomically)."""
    if status == 130:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
    sys.exit(status)
