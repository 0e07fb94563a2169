"""Shared fixtures: the guests of the build (HL_BUILD, default build/ of the checkout)."""

import os
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
BUILD = pathlib.Path(os.environ.get("HL_BUILD", ROOT / "build"))
DEMO = BUILD / "guests" / "demo.elf"
CALLS = BUILD / "tests" / "guests" / "calls_guest.elf"
CANCEL = BUILD / "tests" / "guests" / "cancel_guest.elf"
HOSTILE = BUILD / "tests" / "guests" / "hostile_guest.elf"
# The upper bounds of timings are this many times larger: scripts/test-hwkvm.sh sets it, since
# everything there runs under emulation. Lower bounds (a timeout was waited for) stay.
TIME_SCALE = float(os.environ.get("HL_TIME_SCALE", "1"))


@pytest.fixture
def calls():
    import hyperlight

    with hyperlight.Sandbox(CALLS) as sb:
        yield sb


def weekday() -> str:
    return "Tuesday"


@pytest.fixture
def demo():
    import hyperlight

    with hyperlight.Sandbox(DEMO, host_functions={"GetWeekday": weekday}) as sb:
        yield sb
