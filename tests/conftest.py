"""Fixtures: a running `tern` with a test domain and two accounts; a private Postfix as the
remote MX of `remote.test` (tests/mta.py)."""

import pytest

from ternlib import Tern


@pytest.fixture
def tern(tmp_path):
    server = Tern(tmp_path / "node").start()
    server.cli("domain", "add", "test.example")
    server.add_account("bob@test.example")
    server.add_account("carol@test.example")
    yield server
    server.kill()


@pytest.fixture
def fresh_tern(tmp_path):
    """A running server with no domains or accounts."""
    server = Tern(tmp_path / "node").start()
    yield server
    server.kill()


@pytest.fixture(scope="module")
def postfix(tmp_path_factory):
    """A private Postfix accepting mail for remote.test on a loopback port, one per test module."""
    from mta import Postfix  # imported here: mta needs dkimpy and dnspython, most tests do not

    server = Postfix(tmp_path_factory.mktemp("mx"), ["remote.test"])
    yield server
    server.stop()
