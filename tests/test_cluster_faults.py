"""Jepsen-style: SMTP load through HAProxy while a nemesis kills, pauses and partitions nodes of a
3-node cluster; then every INBOX is read on every node and checked: no acknowledged message lost,
none duplicated, UIDs increasing, UIDVALIDITY stable, every node the same.

The scenario and the checker live in cluster/jepsen.py (benches/faults.py runs the long version).
Rounds: $TERN_FAULT_ROUNDS (default 6). `pytest -s` shows the summary table.
"""

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "cluster"))

import jepsen  # noqa: E402
import ternlocal  # noqa: E402

ROUNDS = int(os.environ.get("TERN_FAULT_ROUNDS", "6"))
SEED = os.environ.get("TERN_FAULT_SEED")


_UNAVAILABLE = ternlocal.unavailable()
needs_cluster = pytest.mark.skipif(_UNAVAILABLE is not None, reason=str(_UNAVAILABLE))


@needs_cluster
def test_no_acknowledged_mail_is_lost_or_duplicated_under_faults(tmp_path):
    with ternlocal.Cluster(tmp_path / "cluster") as c:         # down() on exit, always
        c.up(3, partitions=8)
        report = jepsen.run(c, rounds=ROUNDS, senders=3, accounts=4,
                            seed=int(SEED) if SEED else None)
        table = report.table()
        print("\n" + table)
        print(f"(cluster dir, logs: {c.dir})")
        assert report.sent > 0 and report.acked > 0, table
        assert report.lost == [], table
        assert report.duplicated == [], table
        assert report.misdelivered == [] and report.unknown == [], table
        assert report.subject_mismatch == [], table
        assert report.uid_order == [], table
        assert report.uidvalidity == [], table
        assert report.divergent == [] and report.count_mismatch == [], table
        assert report.acked_during_faults > 0, table
        assert report.failures() == [], table


# --- the checker itself, on made-up INBOXes (no cluster) -----------------------------------------

class _FakeCluster:
    n = 3
    info = {"partitions": 8}


def _inbox(uidvalidity, *messages):
    return jepsen.Inbox(uidvalidity, len(messages),
                        [jepsen.Message(k + 1, uid, mid, subj) for k, (uid, mid, subj)
                         in enumerate(messages)])


def test_the_checker_flags_loss_duplication_divergence_and_uidvalidity(monkeypatch):
    run = jepsen.Run(_FakeCluster(), ["a@x", "b@x"], senders=1, seed=1, log=lambda m: None)
    for k, (acct, acked) in enumerate([("a@x", True), ("a@x", True), ("b@x", True),
                                       ("b@x", False)], 1):
        run.sends.append(jepsen.Send(mid=f"<{k}@t>", subject=f"s{k}", account=acct, sender=0,
                                     start=float(k), end=k + 0.5, acked=acked))
    run.faults.append(jepsen.Fault("kill", 2, start=1.0, end=2.0))
    good = {"a@x": _inbox(7, (1, "<1@t>", "s1"), (2, "<2@t>", "s2")),
            "b@x": _inbox(9, (1, "<3@t>", "s3"))}
    baseline = {"a@x": {1: 7, 2: 7, 3: 7}, "b@x": {1: 9, 2: 9, 3: 9}}
    seen = {1: good, 2: dict(good), 3: dict(good)}
    monkeypatch.setattr(jepsen, "read_inbox_on", lambda c, n, acct: seen[n][acct])

    r = jepsen.check(_FakeCluster(), run, baseline, rounds=1, duration=1.0)
    assert r.failures() == [], r.table()
    assert (r.sent, r.acked, r.acked_during_faults, r.unacked_present) == (4, 3, 1, 0)

    # node 3 lost <2@t>, holds <3@t> twice plus the unacknowledged <4@t>, with a new UIDVALIDITY
    seen[3] = {"a@x": _inbox(7, (1, "<1@t>", "s1")),
               "b@x": _inbox(10, (1, "<3@t>", "s3"), (2, "<3@t>", "s3"), (2, "<4@t>", "s4"))}
    r = jepsen.check(_FakeCluster(), run, baseline, rounds=1, duration=1.0)
    assert len(r.lost) == 1 and "<2@t>" in r.lost[0] and "[3]" in r.lost[0]
    assert len(r.duplicated) == 1 and "<3@t>" in r.duplicated[0]
    assert r.uid_order and r.uidvalidity and r.divergent and r.unacked_present == 1
    assert "RESULT: FAIL" in r.table()
