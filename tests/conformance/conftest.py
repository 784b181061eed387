"""Fixtures of the conformance suite: the upstream schemas, the checker and the renders (renders.py).

Without the upstream schemas (../shared/upstream beside the checkout, or GITPOD_K3S_UPSTREAM) the suite
is skipped and says so; with CI set it fails instead, so CI cannot pass without them.
"""

from __future__ import annotations

import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "render"))

from conformance import UPSTREAM, Checker  # noqa: E402
from renders import CHANGES, FIGURES, INVENTORIES, inventories, render_inventory, rerender  # noqa: E402


@pytest.fixture(scope="session")
def upstream():
    if not (UPSTREAM / "crds").is_dir():
        missing = (f"the upstream CRDs and chart schemas are not at {UPSTREAM} "
                   "(../shared/upstream beside the checkout, or GITPOD_K3S_UPSTREAM)")
        if os.environ.get("CI"):
            pytest.fail(f"conformance suite: {missing}; CI must provide them")
        pytest.skip(f"conformance suite skipped: {missing}")
    return UPSTREAM


@pytest.fixture(scope="session")
def checker(upstream):
    return Checker(upstream)


@pytest.fixture(scope="session")
def renders(upstream, tmp_path_factory):
    """name -> Render for every inventory and every changed re-render; all run in one pool."""
    tmp = tmp_path_factory.mktemp("conformance")
    todo = inventories(tmp)
    with ThreadPoolExecutor(max_workers=3) as pool:
        futures = {name: pool.submit(render_inventory, name, tmp / name, inv, base, initial)
                   for name, (inv, base, initial) in todo.items()}
        for change, extra in CHANGES.items():
            futures[change] = pool.submit(rerender, futures["single"], change, tmp / change, extra)
        results = {name: future.result() for name, future in futures.items()}
    assert tuple(todo) == INVENTORIES
    return results


def pytest_terminal_summary(terminalreporter):
    if not FIGURES:
        return
    terminalreporter.section("conformance figures")
    for key, value in FIGURES.items():
        terminalreporter.write_line(f"{key}: {value}")
