"""Builds hyperlight._hyperlight against the library built in the checkout.

The extension links build/lib/libhyperlight.a statically (no shared library to find at run
time) and includes the public headers make stages in build/include. HL_BUILD names another
build directory (the one `make B=...` used, or an installation prefix)."""

import os

from setuptools import Extension, setup

here = os.path.dirname(os.path.abspath(__file__))
root = os.path.dirname(here)
build = os.path.abspath(os.environ.get("HL_BUILD", os.path.join(root, "build")))
lib = os.path.join(build, "lib", "libhyperlight.a")
if not os.path.exists(lib):
    raise SystemExit(f"{lib} is missing: run `make lib` in {root} first (or set HL_BUILD)")

sources = ["errors.c", "convert.c", "config.c", "sigint.c", "sandbox.c", "snapshot.c", "module.c"]

setup(
    packages=["hyperlight"],
    package_data={"hyperlight": ["py.typed", "*.pyi"]},
    ext_modules=[
        Extension(
            "hyperlight._hyperlight",
            sources=[os.path.join("src", s) for s in sources],
            include_dirs=[os.path.join(build, "include")],  # make stages the public headers there
            define_macros=[("HLPY_BUILD_DIR", '"' + build.replace("\\", "\\\\").replace('"', '\\"') + '"')],
            extra_objects=[lib],
            libraries=["seccomp"],
            extra_compile_args=["-std=gnu11", "-Wall", "-Wextra", "-Werror", "-Wno-unused-parameter",
                                "-Wno-missing-field-initializers", "-fvisibility=hidden"],
            extra_link_args=["-pthread"],
            depends=[os.path.join("src", h) for h in ("hlpy.h", "sigint.h")] + [lib],
        )
    ],
)
