"""A 3-node cluster (cluster/ternlocal.py) spreads its group leaders evenly, gives a returning
node its share back, and a node restarted while cut off from its peers never claims readiness."""

import sys
import time
from collections import Counter
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "cluster"))

import ternlocal  # noqa: E402

PARTITIONS = 8          # 9 groups with the meta group: 3 leaders per node when balanced
NODES = (1, 2, 3)


_UNAVAILABLE = ternlocal.unavailable()
pytestmark = pytest.mark.skipif(_UNAVAILABLE is not None, reason=str(_UNAVAILABLE))


@pytest.fixture
def cluster(tmp_path):
    c = ternlocal.Cluster(tmp_path / "cluster")
    try:
        c.up(3, partitions=PARTITIONS)
        yield c
    finally:
        c.down()


def leader_counts(c, ask: int | None = None) -> Counter:
    """How many groups each node leads, as the leaders themselves report it."""
    try:
        leaders = ternlocal.group_leaders(c.cluster_status(ask))
    except ternlocal.ClusterError:
        return Counter()
    return Counter(view["leader"] for view in leaders.values() if view)


def wait_for(condition, timeout, what, interval=0.2):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = condition()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def balanced(c, ask=None):
    counts = leader_counts(c, ask)
    return counts if sorted(counts.items()) == [(n, 3) for n in NODES] else None


def test_leaders_spread_evenly_and_return_to_a_restarted_node(cluster):
    c = cluster
    wait_for(lambda: balanced(c), 60, "3 leaders on every node")

    c.kill(3)
    # The two survivors take over every group.
    wait_for(lambda: sum(leader_counts(c, 1).values()) == PARTITIONS + 1
             and set(leader_counts(c, 1)) <= {1, 2}, 30, "nodes 1 and 2 to lead every group")

    c.restart(3)
    c.wait_ready(3)
    counts = wait_for(lambda: balanced(c, 1), 90, "node 3 to get its 3 groups back")
    assert counts[3] == 3
    c.wait_converged()


def test_a_node_restarted_while_cut_off_is_never_ready(cluster):
    c = cluster
    ready = lambda i: ternlocal.http_status(c.admin_url(i) + "/health/ready")   # noqa: E731
    c.partition(3)
    c.kill(3)
    c.restart(3)
    # It remembers leaders from before, but hears from none of them: for longer than an
    # election timeout plus a lease it must keep answering 503.
    seen = []
    end = time.monotonic() + 4.0
    while time.monotonic() < end:
        seen.append(ready(3))
        time.sleep(0.05)
    assert 200 not in seen, f"node 3 claimed readiness while cut off: {Counter(seen)}"
    assert seen.count(503) > 0, f"no answer from node 3: {Counter(seen)}"
    c.heal()
    c.wait_ready(3)
