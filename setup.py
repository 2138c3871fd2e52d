"""Only the optional C extension lives here; everything else is in pyproject.toml.

``optional=True``: without a C compiler the package installs without ``segverify.capture._cloops`` and the
reader uses its numpy passes (same results, slower on large captures)."""

from setuptools import Extension, setup

setup(ext_modules=[Extension("segverify.capture._cloops", ["segverify/capture/_cloops.c"], optional=True,
                             extra_compile_args=["-O2"])])
