"""10,000 calls of every kind keep the process's memory flat: RSS, gc-tracked objects and
every block Python allocated (sys.getallocatedblocks counts leaked strs and ints too)."""

import gc
import os
import sys

import hyperlight
from conftest import CALLS


def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def host_string(s: str) -> str:
    return s + "!"


def host_fail(code: hyperlight.i32) -> hyperlight.i32:
    raise ValueError("no")


def test_flat_memory():
    sb = hyperlight.Sandbox(CALLS, host_functions={"HostString": host_string, "HostFail": host_fail})
    payload = b"\x01" * 1000

    def one(i):
        k = i % 8
        if k == 0:
            assert sb.call("EchoString", "hello") == "hello"
        elif k == 1:
            assert sb.call("EchoBytes", payload) == payload
        elif k == 2:
            assert sb.call("HostEchoString", "x") == "x!"
        elif k == 3:
            assert sb.call("CallHostFail", 1) == "rc=-4 err=ValueError: no"
        elif k == 4:
            try:
                sb.call("Fail", 3, "e")
            except hyperlight.GuestError:
                pass
        elif k == 5:
            try:
                sb.call("EchoI32", "wrong")
            except TypeError:
                pass
        elif k == 6:
            assert sb.call("Mixed16", 1, 2, 3, 4, 0.5, 0.25, True, "s", bytearray(b"b"), 5, "t", 6, False, 7,
                           b"", 8).endswith("argc=16")
        else:
            assert sb.call("EchoF64", 1.5) == 1.5

    for i in range(2000):  # warm up: caches, arenas, the guest's heap
        one(i)
    gc.collect()
    rss0, objs0, blocks0 = rss(), len(gc.get_objects()), sys.getallocatedblocks()
    for i in range(10000):
        one(i)
    gc.collect()
    rss1, objs1, blocks1 = rss(), len(gc.get_objects()), sys.getallocatedblocks()
    sb.close()
    assert objs1 - objs0 < 50, (objs0, objs1)
    assert blocks1 - blocks0 < 200, (blocks0, blocks1)  # a leak of one object per call is >= 1250
    assert rss1 - rss0 < 1 << 20, (rss0, rss1)


def test_sandboxes_freed():
    gc.collect()
    rss0, blocks0 = rss(), sys.getallocatedblocks()
    for _ in range(50):
        with hyperlight.Sandbox(CALLS, host_functions={"HostString": host_string}) as sb:
            sb.snapshot()
            sb.call("Counter")
    gc.collect()
    assert sys.getallocatedblocks() - blocks0 < 200
    assert rss() - rss0 < 8 << 20, (rss0, rss())


def open_fds():
    return len(os.listdir("/proc/self/fd"))


def test_cycle_through_host_function_is_collected():
    # a host function that holds its own sandbox: gc collects the cycle and frees the VM (its
    # file descriptors: VM, vCPU, memory) even without close()
    def make():
        box = {}

        def host(x: hyperlight.i32) -> hyperlight.i32:
            return box["sb"].call("Add", x, 1)

        box["sb"] = hyperlight.Sandbox(CALLS, host_functions={"HostI32": host})
        assert box["sb"].call("EchoI32", 4) == 4

    gc.collect()
    fds0 = open_fds()
    make()
    assert open_fds() > fds0  # the VM is alive, in a cycle
    gc.collect()
    assert open_fds() == fds0
    for _ in range(20):
        make()
    gc.collect()
    assert open_fds() == fds0
