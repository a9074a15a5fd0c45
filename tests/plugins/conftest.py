"""The all-architecture kernel build runs while the rest of the suite does.

nvcc for every architecture is the longest single piece of CI (about 11 minutes on 2 cores); run
at its place in the order it leaves the other tests waiting. When the build test is selected it
moves to the end of the run and its build starts right after collection, in the background.
"""

from __future__ import annotations

import pytest

BUILD_TEST = "test_kernels_compile_for_all_archs"


@pytest.hookimpl(trylast=True)  # after -k / -m deselection
def pytest_collection_modifyitems(config, items):
    builds = [item for item in items if item.name == BUILD_TEST]
    if not builds:
        return
    for item in builds:
        items.remove(item)
        items.append(item)
    if config.getoption("collectonly"):
        return
    module = builds[0].module
    module.start_background_build()
    config.add_cleanup(module.stop_background_build)
