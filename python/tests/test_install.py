"""The documented install line works without network: a venv over Debian's Python and
`pip install --no-build-isolation ./python` (from a copy of python/, so that the checkout
stays clean)."""

import os
import shutil
import subprocess

from conftest import BUILD, DEMO, ROOT


def test_pip_install(tmp_path):
    src = tmp_path / "python"
    shutil.copytree(ROOT / "python", src, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    venv = tmp_path / "venv"
    subprocess.run(["/usr/bin/python3", "-m", "venv", "--system-site-packages", str(venv)], check=True)
    env = dict(os.environ, HL_BUILD=str(BUILD), PIP_NO_INDEX="1")
    env.pop("PYTHONPATH", None)
    r = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "--no-build-isolation", str(src)], env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    code = ("import hyperlight, pathlib\n"
            "assert pathlib.Path(hyperlight.__file__).parent.name == 'hyperlight'\n"
            "assert 'site-packages' in hyperlight.__file__, hyperlight.__file__\n"
            "assert (pathlib.Path(hyperlight.__file__).parent / '_hyperlight.pyi').exists()\n"
            f"print(hyperlight.Sandbox({str(DEMO)!r}).call('Add', 40, 2))\n")
    r = subprocess.run([str(venv / "bin" / "python"), "-c", code], env=env, capture_output=True, text=True,
                       cwd=tmp_path, timeout=60)
    assert (r.returncode, r.stdout) == (0, "42\n"), r.stderr
