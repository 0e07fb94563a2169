"""Snapshots (take, restore, new sandboxes from one, files) and pools."""

import threading
import time

import pytest

import hyperlight
from conftest import DEMO


def weekday() -> str:
    return "Sunday"


def test_snapshot_restore(calls):
    first = calls.snapshot()
    assert first.generation == 1
    assert calls.call("Counter") == 1
    second = calls.snapshot()
    assert second.generation == 2
    assert [calls.call("Counter") for _ in range(3)] == [2, 3, 4]
    calls.restore(second)
    assert calls.call("Counter") == 2
    calls.restore(first)
    assert calls.call("Counter") == 1


def test_restore_poisoned(calls):
    snap = calls.snapshot()
    with pytest.raises(hyperlight.GuestAborted):
        calls.call("Abort", 1, "x")
    assert calls.state == "poisoned"
    calls.restore(snap)
    assert calls.state == "ready" and calls.call("Add", 2, 3) == 5


def test_from_snapshot(calls):
    calls.call("Counter")
    snap = calls.snapshot()
    with hyperlight.Sandbox(snap) as a, hyperlight.Sandbox.from_snapshot(snap) as b:
        assert a.call("Counter") == 2 and a.call("Counter") == 3 and b.call("Counter") == 2
        assert [str(f) for f in a.functions] == [str(f) for f in calls.functions]


def test_snapshot_needs_host_functions():
    with hyperlight.Sandbox(DEMO, host_functions={"GetWeekday": weekday}) as sb:
        snap = sb.snapshot()
    with pytest.raises(hyperlight.InvalidArgument) as e:
        hyperlight.Sandbox(snap)
    assert str(e.value) == ("configuration lacks 1 host function the snapshot needs: "
                            "GetWeekday() -> string (missing)")
    with hyperlight.Sandbox(snap, host_functions={"GetWeekday": weekday}) as sb:
        assert sb.call("SayHello", "Al") == "Hello, Al! Today is Sunday."


def test_files(tmp_path, calls):
    calls.call("Counter")
    path = tmp_path / "calls.snap"
    calls.snapshot().save(path)
    assert path.read_bytes()[:8] == b"HLSNAP01"
    loaded = hyperlight.Snapshot.load(path)
    assert loaded.generation == 1  # the first snapshot of a sandbox made from an ELF
    with hyperlight.Sandbox(loaded) as a, hyperlight.Sandbox(str(path)) as b:
        assert a.call("Counter") == 2 and b.call("Counter") == 2
    with hyperlight.Snapshot.load(path) as snap:
        with hyperlight.Sandbox(snap) as c:
            assert c.call("EchoString", "from a file") == "from a file"
    with pytest.raises(hyperlight.SandboxClosed, match=r"^the snapshot was closed$"):
        snap.generation
    with pytest.raises(hyperlight.SandboxClosed):
        hyperlight.Sandbox(snap)


def test_bad_files(tmp_path, calls):
    good = tmp_path / "good.snap"
    calls.snapshot().save(good)
    data = good.read_bytes()
    short = tmp_path / "short.snap"
    short.write_bytes(data[:5000])
    with pytest.raises(hyperlight.BadGuest) as e:
        hyperlight.Snapshot.load(short)
    assert str(e.value) == (f"snapshot file '{short}': truncated: 5000 bytes, but the memory image ends at "
                            f"{len(data)}")
    flipped = tmp_path / "flipped.snap"
    flipped.write_bytes(data[:200] + bytes([data[200] ^ 1]) + data[201:])
    with pytest.raises(hyperlight.BadGuest, match=rf"^snapshot file '{flipped}': "):
        hyperlight.Snapshot.load(flipped)
    garbage = tmp_path / "garbage.snap"
    garbage.write_bytes(b"HLSNAP01" + b"x" * 100)
    for load in (hyperlight.Snapshot.load, hyperlight.Sandbox):
        with pytest.raises(hyperlight.BadGuest, match=r"format version 2021161080, but this library reads"):
            load(garbage)
    with pytest.raises(hyperlight.FileError) as e:
        hyperlight.Snapshot.load(tmp_path / "none.snap")
    assert str(e.value) == f"snapshot file '{tmp_path / 'none.snap'}': cannot open: No such file or directory"
    with pytest.raises(hyperlight.FileError, match=r"cannot create"):
        calls.snapshot().save(tmp_path / "no" / "dir.snap")
    with pytest.raises(TypeError):
        hyperlight.Snapshot.load(42)


def test_pool(calls):
    calls.call("Counter")
    snap = calls.snapshot()
    with hyperlight.Pool(snap, 2) as pool:
        assert pool.ready == 2
        with pool.sandbox() as sb:
            assert pool.ready == 1
            assert sb.call("Counter") == 2 and sb.call("Counter") == 3
        assert sb.closed and pool.ready == 2
        with pytest.raises(hyperlight.SandboxClosed):
            sb.call("Counter")
        for _ in range(3):  # nothing of the last user remains
            with pool.sandbox() as sb:
                assert sb.call("Counter") == 2
        with pool.sandbox() as sb:  # a poisoned sandbox is restored when it goes back
            with pytest.raises(hyperlight.GuestAborted):
                sb.call("Abort", 1, "x")
        with pool.sandbox() as sb:
            assert sb.state == "ready" and sb.call("Counter") == 2
        kept = pool.get()
    with pytest.raises(hyperlight.SandboxClosed, match=r"^the pool is closed$"):
        pool.get()
    assert kept.call("Counter") == 2  # taken out before the pool closed: still valid
    pool.put(kept)
    assert kept.closed


def test_pool_host_functions_and_threads():
    with hyperlight.Sandbox(DEMO, host_functions={"GetWeekday": weekday}) as sb:
        snap = sb.snapshot()
    with pytest.raises(hyperlight.InvalidArgument):
        hyperlight.Pool(snap, 1)
    out, errors = [], []
    with hyperlight.Pool(snap, 4, background=True, host_functions={"GetWeekday": weekday}) as pool:
        def worker(i):
            try:
                for _ in range(20):
                    with pool.sandbox() as s:
                        out.append(s.call("SayHello", str(i)))
            except BaseException as e:
                errors.append(e)

        ts = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
        [t.start() for t in ts]
        [t.join() for t in ts]
    assert errors == [] and sorted(out) == sorted(f"Hello, {i}! Today is Sunday." for i in range(4) for _ in range(20))


@pytest.mark.parametrize("background", [False, True])
def test_pool_close_during_get_and_put(calls, background):
    # close() while 4 threads are inside get() and put() (the GIL released around the library):
    # close waits for them; a get afterwards raises SandboxClosed, a put afterwards frees the
    # sandbox, and a sandbox taken out before the close stays valid.
    calls.call("Counter")
    snap = calls.snapshot()
    for _ in range(50):
        pool = hyperlight.Pool(snap, 2, background=background)
        errors, gets, refused = [], [], []
        start = threading.Barrier(5)

        def worker():
            try:
                start.wait()
                while True:
                    try:
                        sb = pool.get()
                    except hyperlight.SandboxClosed as e:
                        assert str(e) == "the pool is closed"
                        refused.append(e)
                        return
                    gets.append(sb.call("Counter"))
                    pool.put(sb)
                    assert sb.closed
                    with pytest.raises(hyperlight.SandboxClosed, match=r"^the sandbox is closed$"):
                        sb.call("Counter")
            except BaseException as e:  # reported below
                errors.append(e)

        ts = [threading.Thread(target=worker) for _ in range(4)]
        [t.start() for t in ts]
        start.wait()
        time.sleep(0.002)
        pool.close()
        [t.join() for t in ts]
        assert errors == [] and len(refused) == 4
        assert set(gets) <= {2}  # every sandbox was in the snapshot's state
        with pytest.raises(hyperlight.SandboxClosed, match=r"^the pool is closed$"):
            pool.get()
        pool.close()  # twice is fine


def test_pool_bad_input(calls):
    snap = calls.snapshot()
    with hyperlight.Pool(snap, 1) as a, hyperlight.Pool(snap, 1) as b:
        sb = a.get()
        with pytest.raises(ValueError, match=r"^the sandbox was not taken from this pool$"):
            b.put(sb)
        with pytest.raises(ValueError):
            a.put(calls)
        a.put(sb)
    with pytest.raises(TypeError):
        hyperlight.Pool("snap", 1)
    with pytest.raises(hyperlight.InvalidArgument):
        hyperlight.Pool(snap, -1)


def test_background_pool_open_at_exit(tmp_path):
    # a background pool with a log function, never closed: the process exits cleanly
    import os
    import subprocess
    import sys

    from conftest import CALLS as guest

    code = ("import hyperlight\n"
            f"sb = hyperlight.Sandbox({str(guest)!r})\n"
            "logs = []\n"
            "pool = hyperlight.Pool(sb.snapshot(), 3, background=True, log=lambda *a: logs.append(a))\n"
            "with pool.sandbox() as s:\n"
            "    s.call('LogAll')\n"
            "print(len(logs))\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert (r.returncode, r.stdout, r.stderr) == (0, "6\n", "")
