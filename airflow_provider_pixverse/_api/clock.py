"""The one clock every wait reads and sleeps on; tests swap it for a fake one."""

from __future__ import annotations

import asyncio
import time


class Clock:
    """Wall time and sleeping, sync and async. Deadlines are wall time: they survive a move between hosts."""

    def time(self) -> float:
        """Seconds since the epoch."""
        return time.time()

    def sleep(self, seconds: float) -> None:
        """Block for ``seconds``."""
        time.sleep(seconds)

    async def asleep(self, seconds: float) -> None:
        """Wait ``seconds`` without blocking the event loop."""
        await asyncio.sleep(seconds)


SYSTEM_CLOCK = Clock()
