"""The usage line every API stage prints at the end of a run (stage 3, the causal verification,
the eligibility judge): tokens, the prompt-cache share, response-cache hits, max_tokens re-asks,
refusals and cost, added up over the run's clients (LLMClient's counters; a client shared by
several roles counts once). Reads and writes nothing.
"""

from __future__ import annotations

from .types import Usage


def usage_line(clients: list) -> str:
    """Tokens, prompt-cache share, response-cache hits and cost over all clients of the run."""
    unique = list({id(client): client for client in clients}.values())
    usage = Usage()
    for client in unique:
        usage += client.usage
    read, created = usage.cache_read_input_tokens, usage.cache_creation_input_tokens
    prompt = usage.input_tokens + created + read
    share = 100 * read / prompt if prompt else 0.0
    calls = sum(c.calls_made for c in unique)
    hits = sum(c.cache_hits for c in unique)
    refusals = sum(c.refusals for c in unique)
    cost = sum(c.cost_usd for c in unique)
    enlarged = sum(c.max_tokens_retries for c in unique)
    return (
        f"tokens: {prompt} in ({read} read from the prompt cache = {share:.0f}%, {created} written to it), "
        f"{usage.output_tokens} out; {calls} paid call(s), {hits} from the response cache, {enlarged} max_tokens "
        f"stop(s) asked again with more room, {refusals} refused; cost ${cost:.4f}"
    )
