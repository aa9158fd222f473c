"""Sending independent calls through one client, the loop the judges share (the causal verification,
the prompt-eligibility judge): every call at once under the client's own concurrency and rate
limits; a call the --max_cost limit stops, and every call after it, is left for the next run; a
refusal is an outcome handed to the caller (never asked again); any other failed call is counted
with one line and left for the next run; a fatal error (a bad key, say) ends the run. `finish`
reports the failures and gives the exit code. Reads and writes nothing itself: `on_answer` and
`on_refusal` store what came back.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any

from spt.providers.errors import CostLimitReached, ProviderError, Refused

log = logging.getLogger("spt.providers")

EXIT_COMPLETE, EXIT_FAILURES, EXIT_COST_LIMIT = 0, 1, 3


async def send_each(
    client,
    items: Sequence[Any],
    counts,
    *,
    desc: str,
    label: Callable[[Any], str],
    request: Callable[[Any], Any],
    on_answer: Callable[[Any, Any], None],
    on_refusal: Callable[[Any, str], None],
    validate: Callable[[Any], Any] | None = None,
) -> bool:
    """Send `request(item)` for every item; True when --max_cost stopped the run. `counts` has the
    integer fields judged, refused, failed, not_finished and the list failures."""
    stopped = False
    bar = client.progress_bar(total=len(items), desc=desc)

    async def send(item: Any) -> None:
        nonlocal stopped
        if stopped:
            counts.not_finished += 1
            return
        try:
            response = await client.complete(request(item), validate=validate(item) if validate else None)
        except CostLimitReached:
            stopped = True
            counts.not_finished += 1
            return
        except Refused as error:  # an outcome, never asked again
            on_refusal(item, error.text)
            counts.refused += 1
            log.warning("%s: the judge refused: %s", label(item), error)
            bar.update(1)
            return
        except ProviderError as error:
            if error.fatal:
                raise
            counts.failed += 1
            counts.failures.append(f"{label(item)}: {error}")
            log.warning("%s: call failed: %s", label(item), error)
            return
        on_answer(item, response)
        counts.judged += 1
        bar.update(1)

    try:
        await asyncio.gather(*(send(item) for item in items))
    finally:
        bar.close()
    return stopped


def finish(counts, stopped: bool, max_cost: float | None) -> int:
    """After the run's summary: the first failures and the --max_cost stop on stderr; the exit code
    (0 complete, 1 calls failed or left for the next run, 3 stopped by --max_cost)."""
    for failure in counts.failures[:5]:
        print(f"  failed: {failure}", file=sys.stderr)
    if stopped:
        print(f"stopped: --max_cost {max_cost} reached; rerun to continue", file=sys.stderr)
        return EXIT_COST_LIMIT
    return EXIT_FAILURES if counts.failed or counts.not_finished else EXIT_COMPLETE
