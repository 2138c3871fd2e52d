"""Only the optional C extensions live here; everything else is in pyproject.toml.

``optional=True``: without a C compiler the package installs without them, and segverify uses the same
algorithms in Python (the reader's numpy passes, ``dd``'s own calls for the rule compiler, the flow rows'
loop): same results, slower on large inputs."""

from setuptools import Extension, setup

setup(ext_modules=[
    Extension("segverify.capture._cloops", ["segverify/capture/_cloops.c"], optional=True,
              extra_compile_args=["-O2"]),
    Extension("segverify.report._rowtext", ["segverify/report/_rowtext.c"], optional=True,
              extra_compile_args=["-O2"]),
    Extension("segverify.packetspace._cuddops", ["segverify/packetspace/_cuddops.c"], optional=True,
              extra_compile_args=["-O2"]),
])
