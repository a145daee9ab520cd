"""The domain checks' world (NSD, MX servers, an HTTPS policy server), one per test process."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.helpers.domains import World, domain_world


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with domain_world(tmp_path_factory.mktemp("domains")) as built:
        yield built
