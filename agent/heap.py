"""Hand the C heap's free pages back to the kernel once start-up is done.

Start-up builds every pydantic schema, parses the config, the trust store and
the stored plan, and most of what that allocates is garbage a moment later.
glibc keeps the freed pages in its heap, so they stay in the agent's resident
memory for months. One ``malloc_trim(0)`` when the agent is ready returns them
(about 1.4 MiB measured; docs/performance.md). Elsewhere than glibc this does
nothing.
"""

from __future__ import annotations

import ctypes
import gc

from agent.logs import get_logger

log = get_logger("heap")


def trim() -> bool:
    """Collect garbage, then ask glibc to release free heap pages; False when not glibc."""
    gc.collect()
    try:
        # The process's own symbols: the C library the interpreter is linked with.
        malloc_trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return False
    malloc_trim.argtypes = [ctypes.c_size_t]
    malloc_trim.restype = ctypes.c_int
    released = bool(malloc_trim(0))
    log.debug("heap_trimmed", released=released)
    return True
