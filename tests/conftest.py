"""Fixtures: a running `tern` with a test domain and two accounts."""

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
