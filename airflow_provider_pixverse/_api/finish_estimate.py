"""When an account's clips will likely be final, learnt from the clips seen to end: pure, no I/O.

The corpus's engine lists an account when its earliest clip in flight is expected to be final,
not blindly every interval: a window created together (the slots a listing freed are filled at
once) then ends together, and one listing takes the whole window in. The rule:

- The next listing is at the earliest clip's create plus the estimate, never sooner than
  :data:`RETRY_FRACTION` of the estimate after the last listing (a clip overdue is listed again
  that soon), and never later than ``max(poll_interval, estimate)`` after it. With no estimate
  yet, one interval after the last listing (or now).
- A clip seen final at the first listing since its create was done by then, perhaps well before:
  the sample is :data:`SHRINK` of that time (so the estimate probes downwards). A clip seen final
  after a listing that saw it running ended between the two: the sample is their midpoint.
- The estimate is the running mean of the samples, the newest weighing :data:`WEIGHT`.

So the estimate settles just above the clips' real time (about 5% over it, in simulation, for
clips of 0.3 to 7 intervals, at 1.6 to 1.9 listings per window of clips), and a listing that comes
too early costs one more a tenth of a clip's time later.
"""

from __future__ import annotations

from dataclasses import dataclass

RETRY_FRACTION = 0.1
SHRINK = 0.8
WEIGHT = 0.3


@dataclass
class FinishEstimate:
    """The expected time from a clip's create to its final status on one account (see the module)."""

    poll_interval: float
    seconds: float | None = None

    def observe(self, created: float, seen_final: float, seen_running: float | None = None) -> None:
        """A clip created at ``created`` was seen final at ``seen_final`` (and running at ``seen_running``)."""
        if seen_running is not None and seen_running > created:
            sample = (seen_running + seen_final) / 2 - created
        else:
            sample = SHRINK * (seen_final - created)
        sample = max(sample, 0.0)
        self.seconds = sample if self.seconds is None else (1 - WEIGHT) * self.seconds + WEIGHT * sample

    def next_listing(self, now: float, last_listing: float | None, created: list[float]) -> float:
        """When to list the account next, given when its clips in flight were created."""
        start = now if last_listing is None else last_listing
        if self.seconds is None or not created:
            return start + self.poll_interval
        latest = start + max(self.poll_interval, self.seconds)
        earliest = start + RETRY_FRACTION * self.seconds if last_listing is not None else now
        return min(latest, max(min(created) + self.seconds, earliest))
