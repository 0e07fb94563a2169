"""The documented install line works without network: a venv over Debian's Python and
`pip install --no-build-isolation ./python` (from a copy of python/, so that the checkout
stays clean)."""

import os
import shutil
import subprocess

import pytest

from conftest import BUILD, DEMO, ROOT


@pytest.fixture(scope="module")
def venv(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("install")
    src = tmp_path / "python"
    shutil.copytree(ROOT / "python", src, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    venv = tmp_path / "venv"
    subprocess.run(["/usr/bin/python3", "-m", "venv", "--system-site-packages", str(venv)], check=True)
    env = dict(os.environ, HL_BUILD=str(BUILD), PIP_NO_INDEX="1")
    env.pop("PYTHONPATH", None)
    r = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "--no-build-isolation", str(src)], env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    return venv


def test_pip_install(venv):
    env = dict(os.environ, HL_BUILD=str(BUILD), PIP_NO_INDEX="1")
    env.pop("PYTHONPATH", None)
    code = ("import hyperlight, pathlib\n"
            "assert pathlib.Path(hyperlight.__file__).parent.name == 'hyperlight'\n"
            "assert 'site-packages' in hyperlight.__file__, hyperlight.__file__\n"
            "assert (pathlib.Path(hyperlight.__file__).parent / '_hyperlight.pyi').exists()\n"
            f"print(hyperlight.Sandbox({str(DEMO)!r}).call('Add', 40, 2))\n")
    r = subprocess.run([str(venv / "bin" / "python"), "-c", code], env=env, capture_output=True, text=True,
                       cwd=venv.parent, timeout=60)
    assert (r.returncode, r.stdout) == (0, "42\n"), r.stderr


def test_installed_finds_guests_in_prefix(venv):
    """Without HL_BUILD, an installed package finds the guests in PREFIX/lib/hyperlight/guests
    (sys.prefix: the venv) first, then in the build directory it was built against."""
    lua = BUILD / "guests" / "lua.elf"
    if not lua.is_file():
        pytest.skip(f"{lua} is not built")
    guests = venv / "lib" / "hyperlight" / "guests"
    guests.mkdir(parents=True, exist_ok=True)
    shutil.copy(lua, guests / "lua.elf")
    env = {k: v for k, v in os.environ.items() if k not in ("HL_BUILD", "PYTHONPATH")}
    code = ("import hyperlight\n"
            "print(hyperlight.find_guest('lua'))\n"
            "print(hyperlight.run('40 + 2', 'lua').value)\n"
            "print(hyperlight.find_guest('js'))\n")
    r = subprocess.run([str(venv / "bin" / "python"), "-c", code], env=env, capture_output=True, text=True,
                       cwd=venv.parent, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [str(guests / "lua.elf"), "42", str(BUILD.resolve() / "guests" / "javascript.elf")]
