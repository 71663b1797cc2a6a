"""Work that waits on another system (a mail server, Folkeregisteret), run off the event loop on
a daemon thread of its own."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


async def on_daemon_thread(function: Callable[[], T], name: str) -> T:
    """Runs ``function`` on a thread of its own and awaits it.

    A remote system can keep a connection waiting for its whole timeout: on a daemon thread, a
    round still running when the server stops is abandoned, so that stopping never waits for it
    and it never keeps the process from exiting (what it was doing is done again later).
    """
    done: concurrent.futures.Future[T] = concurrent.futures.Future()

    def run() -> None:
        if not done.set_running_or_notify_cancel():
            return
        try:
            done.set_result(function())
        except BaseException as error:
            done.set_exception(error)

    threading.Thread(target=run, name=name, daemon=True).start()
    return await asyncio.wrap_future(done)
