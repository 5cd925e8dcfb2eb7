"""One message's send: the provider called once, and again at once (tenacity) when it
refused this message for now with a short wait. Runs on the sending loop.

Immediate retries are for message-level refusals only (a full queue at the carrier for
this sender, say): a provider-wide one (5xx, refused connection, 429) is the lane's
business (a cooldown, a lower rate), and a long wait the batch's (it re-enqueues). Each
retry passes the rate's gate again, at the moment it goes, like any send.
"""

from __future__ import annotations

import asyncio
import random

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential_jitter,
)

from providers import ErrorKind, OutgoingMessage, Provider, SendError, SendResult
from worker.sending.gate import Gate

#: Immediate retries only for waits this short (seconds); longer ones re-enqueue.
QUICK_WAIT = 2.0


async def _send(provider: Provider, message: OutgoingMessage) -> SendResult:
    """One call to the provider; whatever goes wrong comes out as a classified SendError."""
    try:
        return await provider.send(message)
    except Exception as exc:  # every provider error is classified, none escapes
        raise provider.classify(exc) from None


def _quick(error: BaseException) -> bool:
    """Worth an immediate retry: refused for now, for this message, with a short wait."""
    return (
        isinstance(error, SendError)
        and error.kind is ErrorKind.RETRYABLE
        and not error.provider_wide
        and (error.retry_after or 0) <= QUICK_WAIT
    )


_backoff = wait_exponential_jitter(multiplier=0.2, max=QUICK_WAIT, jitter=0.2)


def _pause(state: RetryCallState) -> float:
    """Exponential with jitter from 0.2 s, never shorter than the provider's Retry-After."""
    error = state.outcome.exception() if state.outcome else None
    return max(_backoff(state), getattr(error, "retry_after", None) or 0.0)


async def attempt(
    provider: Provider, message: OutgoingMessage, gate: Gate, cost: int, retries: int
) -> SendResult | SendError:
    """Send one message whose first send the gate already let through, with up to
    ``retries`` immediate retries of message-level retryable errors (each through
    ``gate`` for ``cost`` tokens). Returns the error instead of raising, classified."""
    try:
        try:
            return await _send(provider, message)  # the common case: no retry machinery
        except SendError as first:
            if not (_quick(first) and retries):
                raise
            await asyncio.sleep(max(random.uniform(0.2, 0.4), first.retry_after or 0.0))
        retrying = AsyncRetrying(
            retry=retry_if_exception(_quick),
            stop=stop_after_attempt(retries) | stop_after_delay(2 * QUICK_WAIT),
            wait=_pause,
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                await gate.through(cost)
                return await _send(provider, message)
        raise AssertionError("unreachable: tenacity returns or raises")  # pragma: no cover
    except SendError as error:
        return error
