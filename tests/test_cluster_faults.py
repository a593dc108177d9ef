"""Jepsen-style: SMTP load through HAProxy while a nemesis kills, pauses, partitions, deafens and
wipes nodes of a 3-node cluster (the wiped node is refused, removed with `cluster remove --dead`
and replaced by a spare under a new id); then every INBOX is read on every current member and
checked: no acknowledged message lost, none duplicated, UIDs increasing, UIDVALIDITY stable, every
member the same, the replacement included.

The scenario and the checker live in cluster/jepsen.py (benches/faults.py runs the long version).
Rounds: $TERN_FAULT_ROUNDS (default 6; 5 or more play every kind). `pytest -s` shows the summary
table.
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
        c.up(3, partitions=8, spare=1)                         # node 4: the wipe's replacement
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
        if ROUNDS >= len(jepsen.FAULT_KINDS):                  # every kind was played once
            assert {f.kind for f in report.faults} == set(jepsen.FAULT_KINDS), table
            (wipe,) = [f for f in report.faults if f.kind == "wipe"]
            assert wipe.replacement == 4 and wipe.recovered, table
            assert report.members == sorted(set(range(1, 4)) - {wipe.node} | {4}), table
            assert report.removed == [wipe.node] and wipe.node not in report.per_node, table
            assert report.per_node[4] == report.per_node[report.members[0]] > 0, table
            assert "wipe 1" in table and "replaced by node 4" in table, table


# --- the checker itself, on made-up INBOXes (no cluster) -----------------------------------------

class _FakeCluster:
    n = 4
    members = [1, 2, 3]
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


def test_the_checker_reads_the_current_members_after_a_wipe(monkeypatch):
    class Replaced(_FakeCluster):
        members = [1, 3, 4]                     # node 2 wiped and removed, node 4 joined

    run = jepsen.Run(Replaced(), ["a@x"], senders=1, seed=1, log=lambda m: None)
    run.sends.append(jepsen.Send(mid="<1@t>", subject="s1", account="a@x", sender=0, start=1.0,
                                 end=1.5, acked=True))
    run.faults.append(jepsen.Fault("wipe", 2, start=1.0, end=2.0, replacement=4))
    seen = {n: {"a@x": _inbox(7, (1, "<1@t>", "s1"))} for n in (1, 3, 4)}
    monkeypatch.setattr(jepsen, "read_inbox_on", lambda c, n, acct: seen[n][acct])
    baseline = {"a@x": {1: 7, 2: 7, 3: 7}}

    r = jepsen.check(Replaced(), run, baseline, rounds=1, duration=1.0)
    assert r.failures() == [], r.table()
    assert (r.members, r.removed, sorted(r.per_node)) == ([1, 3, 4], [2], [1, 3, 4])
    assert "wipe 1" in r.table() and "replaced by node 4" in r.table()

    seen[4] = {"a@x": _inbox(7)}                # the replacement missed an acknowledged message
    r = jepsen.check(Replaced(), run, baseline, rounds=1, duration=1.0)
    assert len(r.lost) == 1 and "[4]" in r.lost[0] and r.divergent
