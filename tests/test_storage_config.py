"""`[storage]` settings a node refuses to start with, saying why."""

import pytest

from ternlib import Tern


def test_a_dedup_window_shorter_than_the_queue_lifetime_is_refused(tmp_path):
    t = Tern(tmp_path / "node", extra_config="[storage]\ndedup_window_secs = 3600\n")
    with pytest.raises(RuntimeError) as refused:
        t.start(timeout=30)
    assert "dedup_window_secs (3600)" in str(refused.value)
    assert "give_up_after_secs" in str(refused.value)
