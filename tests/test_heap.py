"""agent.heap: free heap pages go back to the kernel once the agent is ready."""

from __future__ import annotations

import platform

import pytest

from agent import heap


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc_trim is glibc's")
def test_trim_reaches_glibc_and_keeps_the_process_working() -> None:
    garbage = [bytes(4096) for _ in range(2000)]  # ~8 MiB on the heap, then freed
    del garbage
    assert heap.trim()
    assert heap.trim()  # idempotent: nothing left to give back is fine
