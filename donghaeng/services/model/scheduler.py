"""Admission control: who may use an engine slot now, who waits, and who is told to come back.

* each person may have ``per_user_concurrency`` requests running or waiting;
* each person may receive ``tokens_per_minute`` generated tokens in any 60-second window;
* each model runs at most ``capacity`` requests at once (its engine's slots); the rest wait in one
  priority queue per model, and all queues together hold at most ``queue_size`` requests (people in
  ``priority_groups`` go ahead of the others and may use ``priority_reserve`` extra places);
* a request that waits longer than its deadline is dropped from the queue.

Everything runs on the service's single asyncio loop, so no locks are needed.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field

from donghaeng.services.model import errors as E
from donghaeng.services.model.errors import ServiceError

WINDOW_S = 60.0


@dataclass
class Ticket:
    user: str
    model: str
    priority: bool
    queued_s: float = 0.0
    released: bool = False


@dataclass(order=True)
class _Waiter:
    rank: tuple[int, int]
    future: asyncio.Future = field(compare=False)
    ticket: Ticket = field(compare=False)


class Scheduler:
    def __init__(self, capacities: dict[str, int], *, per_user: int, tokens_per_minute: int,
                 queue_size: int, priority_reserve: int = 0) -> None:
        self.capacities = dict(capacities)
        self.per_user = per_user
        self.tokens_per_minute = tokens_per_minute
        self.queue_size = queue_size
        self.priority_reserve = priority_reserve
        self.active: dict[str, int] = defaultdict(int)
        self.queues: dict[str, list[_Waiter]] = defaultdict(list)
        self.user_load: dict[str, int] = defaultdict(int)
        self.spent: dict[str, deque[tuple[float, int]]] = defaultdict(deque)
        self._seq = itertools.count()

    # -- views -----------------------------------------------------------------------------
    @property
    def waiting(self) -> int:
        return sum(len(q) for q in self.queues.values())

    def waiting_for(self, model: str) -> int:
        return len(self.queues[model])

    def tokens_used(self, user: str, now: float | None = None) -> int:
        now = time.monotonic() if now is None else now
        spent = self.spent[user]
        while spent and now - spent[0][0] > WINDOW_S:
            spent.popleft()
        return sum(n for _, n in spent)

    # -- admission ---------------------------------------------------------------------------
    def _check_rate(self, user: str) -> None:
        now = time.monotonic()
        if self.tokens_used(user, now) < self.tokens_per_minute:
            return
        spent = self.spent[user]
        # Wait until enough of the window has expired to drop below the limit.
        total, retry = self.tokens_used(user, now), 1
        for t, n in spent:
            total -= n
            if total < self.tokens_per_minute:
                retry = max(1, math.ceil(WINDOW_S - (now - t)))
                break
        raise ServiceError(429, E.MSG_RATE_LIMITED.format(limit=self.tokens_per_minute, retry=retry),
                           type=E.RATE, reason="tokens_per_minute", headers={"Retry-After": str(retry)},
                           limit=self.tokens_per_minute, retry_after=retry)

    async def acquire(self, user: str, model: str, *, priority: bool, timeout: float) -> Ticket:
        """Wait for a slot of *model*; raise :class:`ServiceError` (429/503) when refused."""
        if self.user_load[user] >= self.per_user:
            raise ServiceError(429, E.MSG_USER_CONCURRENCY.format(limit=self.per_user), type=E.RATE,
                               reason="user_concurrency", headers={"Retry-After": "2", **E.NO_AUTO_RETRY}, limit=self.per_user)
        self._check_rate(user)
        ticket = Ticket(user, model, priority)
        capacity = self.capacities.get(model, 1)
        if self.active[model] < capacity and not self.queues[model]:
            self._admit(ticket)
            return ticket
        limit = self.queue_size + (self.priority_reserve if priority else 0)
        waiting = self.waiting
        if waiting >= limit:
            raise ServiceError(
                429, E.MSG_QUEUE_FULL.format(waiting=waiting, size=self.queue_size), type=E.RATE,
                reason="queue_full", headers={"Retry-After": "5", **E.NO_AUTO_RETRY},
                queue_length=waiting, queue_size=self.queue_size, queue_position=waiting + 1)
        loop = asyncio.get_running_loop()
        waiter = _Waiter((0 if priority else 1, next(self._seq)), loop.create_future(), ticket)
        heapq.heappush(self.queues[model], waiter)
        self.user_load[user] += 1
        start = time.monotonic()
        try:
            await asyncio.wait_for(asyncio.shield(waiter.future), timeout)
        except (asyncio.TimeoutError, asyncio.CancelledError) as exc:
            if waiter.future.done() and not waiter.future.cancelled():
                # Admitted at the very moment we gave up: hand the slot back.
                self.release(ticket)
            else:
                waiter.future.cancel()
                self._drop(model, waiter)
                self.user_load[user] -= 1
            if isinstance(exc, asyncio.CancelledError):
                raise
            raise ServiceError(503, E.MSG_QUEUE_TIMEOUT, type=E.RATE, reason="queue_timeout",
                               headers={"Retry-After": "10", **E.NO_AUTO_RETRY}) from None
        ticket.queued_s = time.monotonic() - start
        return ticket

    def _admit(self, ticket: Ticket) -> None:
        self.active[ticket.model] += 1
        self.user_load[ticket.user] += 1

    def _drop(self, model: str, waiter: _Waiter) -> None:
        queue = self.queues[model]
        try:
            queue.remove(waiter)
        except ValueError:
            return
        heapq.heapify(queue)

    def release(self, ticket: Ticket) -> None:
        """Give the slot back and let the next waiter of the same model in."""
        if ticket.released:
            return
        ticket.released = True
        self.active[ticket.model] -= 1
        self.user_load[ticket.user] -= 1
        queue = self.queues[ticket.model]
        while queue and self.active[ticket.model] < self.capacities.get(ticket.model, 1):
            waiter = heapq.heappop(queue)
            if waiter.future.done():
                continue
            self.active[ticket.model] += 1  # the waiter's user_load was counted when it queued
            waiter.future.set_result(None)

    def charge(self, user: str, tokens: int) -> None:
        """Count *tokens* generated for *user* against the per-minute budget."""
        if tokens > 0:
            self.spent[user].append((time.monotonic(), tokens))
