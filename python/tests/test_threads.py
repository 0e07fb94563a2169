"""Threads: ten sandboxes on ten threads, the GIL released while guests run, one call at a
time per sandbox, and asyncio."""

import asyncio
import threading
import time

import pytest

import hyperlight
from conftest import CALLS, CANCEL


def test_ten_threads():
    results, errors = {}, []

    def worker(i):
        try:
            def host(x: hyperlight.i32) -> hyperlight.i32:
                return x * 1000 + i

            with hyperlight.Sandbox(CALLS, host_functions={"HostI32": host}) as sb:
                got = [sb.call("Add", i, k) for k in range(200)]
                got.append(sb.call("HostEchoI32", i))
                got.append(sb.call("Counter"))
                results[i] = got
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    for i in range(10):
        assert results[i] == [i + k for k in range(200)] + [i * 1000 + i, 201 - 200]


def test_gil_released_during_call():
    # while a guest spins for a while on one thread, Python code runs on this one
    with hyperlight.Sandbox(CANCEL) as sb:
        done = threading.Event()
        t = threading.Thread(target=lambda: (sb.call("SpinFor", 300_000_000), done.set()))
        ticks = 0
        t.start()
        while not done.is_set() and ticks < 10**9:
            ticks += 1
        t.join()
        assert ticks > 10000  # with the GIL held by the call this would stay near 0


def test_concurrent_call_on_one_sandbox_is_busy():
    with hyperlight.Sandbox(CANCEL) as sb:
        t = threading.Thread(target=lambda: pytest.raises(hyperlight.Cancelled, sb.call, "Spin"))
        t.start()
        time.sleep(0.3)
        with pytest.raises(hyperlight.Busy, match=r"^the sandbox is running a call \(one sandbox runs one call at a time\)$"):
            sb.call("Count")
        with pytest.raises(hyperlight.Busy, match=r"^cannot close a sandbox while it runs a call$"):
            sb.close()
        with pytest.raises(hyperlight.Busy):
            sb.snapshot()
        sb.interrupt()
        t.join()
        assert sb.state == "poisoned"


def test_acall():
    async def main():
        with hyperlight.Sandbox(CANCEL) as slow, hyperlight.Sandbox(CALLS) as fast:
            ticks = 0

            async def ticker():
                nonlocal ticks
                while True:
                    ticks += 1
                    await asyncio.sleep(0.001)

            tick = asyncio.create_task(ticker())
            spun = await slow.acall("SpinFor", 300_000_000)
            tick.cancel()
            assert spun == 300_000_000 and ticks > 5  # the loop ran during the call
            assert await asyncio.gather(*(fast.acall("Add", 1, i) for i in range(1)), slow.acall("Count")) == [1, 1]
            # two calls at once on one sandbox: the second is refused
            first = asyncio.ensure_future(slow.acall("Spin"))
            await asyncio.sleep(0.2)
            with pytest.raises(hyperlight.Busy):
                await slow.acall("Count")
            # cancelling the awaiting task interrupts the call
            first.cancel()
            with pytest.raises(asyncio.CancelledError):
                await first
            for _ in range(100):  # the executor's thread sees the interrupt
                await asyncio.sleep(0.05)
                if slow.state == "poisoned":
                    break
            assert slow.state == "poisoned"

    asyncio.run(main())
