"""One exception class per hl_status, with the library's message, the sandbox's state after
it, closed sandboxes and bad input."""

import os
import subprocess
import sys

import pytest

import hyperlight
from conftest import CALLS, DEMO, HOSTILE

STATUS = {
    hyperlight.InvalidArgument: ("HL_ERR_INVALID_ARG", ValueError),
    hyperlight.NotFound: ("HL_ERR_NOT_FOUND", LookupError),
    hyperlight.SignatureMismatch: ("HL_ERR_TYPE", TypeError),
    hyperlight.GuestError: ("HL_ERR_GUEST", None),
    hyperlight.GuestAborted: ("HL_ERR_ABORTED", None),
    hyperlight.GuestFault: ("HL_ERR_FAULT", None),
    hyperlight.ProtocolError: ("HL_ERR_PROTOCOL", None),
    hyperlight.StateError: ("HL_ERR_STATE", None),
    hyperlight.OutOfMemory: ("HL_ERR_NO_MEMORY", MemoryError),
    hyperlight.HypervisorError: ("HL_ERR_HYPERVISOR", None),
    hyperlight.BadGuest: ("HL_ERR_BAD_GUEST", None),
    hyperlight.FileError: ("HL_ERR_IO", OSError),
    hyperlight.Cancelled: ("HL_ERR_CANCELLED", None),
    hyperlight.SystemFailure: ("HL_ERR_SYSTEM", None),
    hyperlight.TooLarge: ("HL_ERR_TOO_LARGE", None),
}


def test_hierarchy():
    assert len(STATUS) == 15  # every hl_status but HL_OK
    for cls, (status, extra) in STATUS.items():
        assert issubclass(cls, hyperlight.Error) and cls.__module__ == "hyperlight"
        if extra:
            assert issubclass(cls, extra)
    assert issubclass(hyperlight.Timeout, hyperlight.Cancelled) and issubclass(hyperlight.Timeout, TimeoutError)
    assert issubclass(hyperlight.SandboxClosed, ValueError) and issubclass(hyperlight.Busy, RuntimeError)
    assert hyperlight.SandboxClosed.status is None


def check(e, cls, message, code=0, guest_message=""):
    assert type(e.value) is cls
    assert str(e.value) == message
    assert e.value.status == STATUS[cls][0]
    assert e.value.code == code and e.value.guest_message == guest_message


def test_guest_error(calls):
    with pytest.raises(hyperlight.GuestError) as e:
        calls.call("Fail", 7, "boom")
    check(e, hyperlight.GuestError, "guest function 'Fail' failed with code 7: boom", 7, "boom")
    assert calls.state == "ready"


def test_guest_aborted_then_state_error(calls):
    with pytest.raises(hyperlight.GuestAborted) as e:
        calls.call("Abort", 9, "bye")
    check(e, hyperlight.GuestAborted, "guest aborted with code 9: bye", 9, "bye")
    assert calls.state == "poisoned"
    with pytest.raises(hyperlight.StateError) as e:
        calls.call("Add", 1, 2)
    check(e, hyperlight.StateError, "sandbox is poisoned (after: guest aborted with code 9: bye)")


def test_fault_and_protocol():
    with hyperlight.Sandbox(HOSTILE) as sb:
        with pytest.raises(hyperlight.GuestFault, match=r"^guest fault: NULL pointer write at 0x0, rip 0x"):
            sb.call("WriteNull")
        assert sb.state == "poisoned"
    with hyperlight.Sandbox(HOSTILE) as sb:
        with pytest.raises(hyperlight.ProtocolError) as e:
            sb.call("Corrupt", 5)
        check(e, hyperlight.ProtocolError, "guest output buffer corrupt: unknown record kind at offset 0x8")
        assert sb.state == "poisoned"


def test_creation_errors(tmp_path):
    with pytest.raises(hyperlight.InvalidArgument) as e:
        hyperlight.Sandbox(CALLS, heap=1)
    check(e, hyperlight.InvalidArgument, "heap size 1 is below the minimum 65536")
    with pytest.raises(hyperlight.InvalidArgument, match=r"^scratch size .* is above the maximum"):
        hyperlight.Sandbox(CALLS, stack=1 << 40)
    with pytest.raises(hyperlight.BadGuest) as e:
        hyperlight.Sandbox(b"garbage")
    check(e, hyperlight.BadGuest, "guest ELF: file too short (7 bytes)")
    with pytest.raises(hyperlight.FileError) as e:
        hyperlight.Sandbox(tmp_path / "missing.elf")
    assert isinstance(e.value, OSError)
    assert str(e.value) == f"cannot open guest '{tmp_path / 'missing.elf'}': No such file or directory"
    junk = tmp_path / "junk.elf"
    junk.write_bytes(b"\x7fELF" + bytes(4096))
    with pytest.raises(hyperlight.BadGuest) as e:
        hyperlight.Sandbox(junk)
    assert str(e.value) == f"{junk}: guest ELF: not a 64-bit little-endian x86-64 ELF"
    with pytest.raises(hyperlight.BadGuest, match=r"^guest ELF: "):
        hyperlight.Sandbox(bytearray(DEMO.read_bytes()[:1000]))


def test_bad_arguments():
    with pytest.raises(TypeError, match=r"^a guest is a path, bytes or a Snapshot, not int$"):
        hyperlight.Sandbox(42)
    with pytest.raises(TypeError, match=r"^timeout must be a number of seconds or None, not str$"):
        hyperlight.Sandbox(CALLS, timeout="1")
    with pytest.raises(ValueError, match=r"^timeout must be between 0 and 1e9 seconds, not -1$"):
        hyperlight.Sandbox(CALLS, timeout=-1)
    with pytest.raises(TypeError, match=r"^print and log must be callables or None$"):
        hyperlight.Sandbox(CALLS, print=3)
    with pytest.raises(OverflowError):
        hyperlight.Sandbox(CALLS, heap=-1)
    with pytest.raises(TypeError):
        hyperlight.Sandbox(CALLS, heap="big")
    with pytest.raises(TypeError):
        hyperlight.Sandbox(CALLS, bogus=1)


def test_hypervisor_error():
    # a /dev without kvm (bubblewrap's minimal /dev), in a child process
    code = "import hyperlight\ntry:\n hyperlight.Sandbox(%r)\nexcept hyperlight.HypervisorError as e:\n print(e.status, e)" % str(DEMO)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    r = subprocess.run(["bwrap", "--dev-bind", "/", "/", "--dev", "/dev", sys.executable, "-c", code],
                       capture_output=True, text=True, env=env, timeout=60)
    assert r.stdout == f"HL_ERR_HYPERVISOR {DEMO}: cannot open /dev/kvm: No such file or directory\n", r.stderr


def test_closed(calls):
    calls.close()
    calls.close()  # twice is fine
    assert calls.state == "closed" and calls.closed
    for f, args in [(calls.call, ("Add", 1, 2)), (calls.snapshot, ()), (calls.set_timeout, (1,))]:
        with pytest.raises(hyperlight.SandboxClosed, match=r"^the sandbox is closed$"):
            f(*args)
    with pytest.raises(hyperlight.SandboxClosed):
        calls.functions
    calls.interrupt()  # nothing to stop: no error
    assert repr(calls) == "<hyperlight.Sandbox closed>"


def test_restore_bad_input(calls):
    with pytest.raises(TypeError, match=r"^restore\(\) needs a Snapshot, not str$"):
        calls.restore("snap")
    with pytest.raises(TypeError, match=r"^cannot create 'hyperlight.Snapshot' instances$"):
        hyperlight.Snapshot()
    with hyperlight.Sandbox(DEMO) as other:
        with pytest.raises(hyperlight.InvalidArgument):
            calls.restore(other.snapshot())
    assert calls.state == "ready"


def test_out_of_memory():
    # a child whose address space ends 64 MiB beyond what it uses: a 200 MiB heap does not fit
    code = ("import resource, hyperlight\n"
            "size = int([l for l in open('/proc/self/status') if l.startswith('VmSize:')][0].split()[1]) * 1024\n"
            "resource.setrlimit(resource.RLIMIT_AS, (size + (64 << 20), size + (64 << 20)))\n"
            "try:\n"
            f"    hyperlight.Sandbox({str(DEMO)!r}, heap=200 << 20)\n"
            "except hyperlight.OutOfMemory as e:\n"
            "    print(isinstance(e, MemoryError), e.status, e)\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert r.stdout.startswith(f"True HL_ERR_NO_MEMORY {DEMO}: "), (r.stdout, r.stderr)
    assert "guest memory" in r.stdout
