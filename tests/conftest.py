"""Shared fixtures."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from mailcanary.i18n import from_environment
from mailcanary.testbed import MailTestBed, ensure_installed
from mailcanary.testbed.standard_ports import StandardPortsBed

# The tests read English unless they choose a language: a developer's LANG=ja_JP.UTF-8 must
# not change what `check` or the daemon print (tests/test_i18n*.py set the language they test).
if from_environment() != "en":
    os.environ["LC_ALL"] = "C.UTF-8"


@pytest.fixture(scope="session")
def testbed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MailTestBed]:
    """A started Dovecot + Postfix test bed, shared by the whole session."""
    ensure_installed()
    bed = MailTestBed(tmp_path_factory.mktemp("testbed"))
    bed.start()
    try:
        yield bed
    finally:
        bed.stop()


@pytest.fixture(scope="session")
def standard_bed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StandardPortsBed]:
    """Dovecot and Postfix on the standard ports of 127.0.0.3, for the settings doctor.

    Fixed ports: every test using it is marked ``xdist_group("standard-ports")``.
    """
    ensure_installed()
    bed = StandardPortsBed(tmp_path_factory.mktemp("standard"))
    bed.start()
    try:
        yield bed
    finally:
        bed.stop()


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Make ``xdist_group`` work on pytest >= 9.2 (xdist 3.8 still renames ``item._nodeid``,
    which pytest 9.2 no longer reads: without this, ``--dist loadgroup`` spreads a group's
    tests over all workers and two of them start the standard-ports bed at once)."""
    if not getattr(config.option, "loadgroup", False):
        return
    try:
        from _pytest.nodeid import NodeId  # noqa: PLC0415  (pytest >= 9.2 only)
    except ImportError:
        return
    for item in items:
        groups = sorted({str(m.args[0] if m.args else m.kwargs.get("name", "default"))
                         for m in item.iter_markers("xdist_group")})
        suffix = "@" + "_".join(groups)
        if groups and not item.nodeid.endswith(suffix):
            item._id = NodeId.parse(item.nodeid + suffix)
