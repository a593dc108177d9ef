#!/usr/bin/env python3
"""The long fault run: the scenario of tests/test_cluster_faults.py (cluster/jepsen.py) with as
many rounds as you like, on a fresh local cluster; prints the summary table.

    export CARGO_TARGET_DIR=/var/tmp/tern-target; cargo build --release -p tern
    benches/faults.py --rounds 100
    benches/faults.py --rounds 20 --seed 42 --keep      # keep the cluster dir (logs) afterwards
    benches/faults.py --rounds 50 --kinds kill,pause    # only these faults

Every kind is played once (in a seeded order) before any repeats; "wipe" at most once a run: the
cluster is brought up with one spare node slot for the wiped node's replacement.

The exit status is 0 when every check passed, 1 when one failed, 2 when the run itself broke (the
cluster did not come up or did not recover). The cluster dir (node logs under node<i>/log) is
kept whenever the run did not pass.
"""

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "cluster"))

import jepsen  # noqa: E402
import ternlocal  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    p.add_argument("--rounds", type=int, default=100, help="fault rounds (default 100)")
    p.add_argument("--nodes", type=int, default=3, help="cluster size (default 3)")
    p.add_argument("--partitions", type=int, default=8, help="data partitions (default 8)")
    p.add_argument("--senders", type=int, default=3, help="SMTP sender threads (default 3)")
    p.add_argument("--accounts", type=int, default=4, help="accounts (default 4)")
    p.add_argument("--interval", type=float, default=0.0,
                   help="pause of each sender between messages, seconds (default 0)")
    p.add_argument("--hold", type=float, nargs=2, default=(1.0, 3.0), metavar=("MIN", "MAX"),
                   help="how long each fault is held, seconds (default 1 3)")
    p.add_argument("--kinds", default=",".join(jepsen.FAULT_KINDS),
                   help=f"faults to draw from, comma-separated (default "
                   f"{','.join(jepsen.FAULT_KINDS)})")
    p.add_argument("--seed", type=int, help="random seed (default: random, printed)")
    p.add_argument("--dir", help="cluster dir (default: a new temporary dir)")
    p.add_argument("--bin", help="the tern binary (default as tern-local finds it)")
    p.add_argument("--keep", action="store_true", help="keep the cluster dir even on success")
    args = p.parse_args(argv)
    kinds = tuple(k.strip() for k in args.kinds.split(",") if k.strip())
    unknown = sorted(set(kinds) - set(jepsen.FAULT_KINDS))
    if unknown or not kinds:
        p.error(f"--kinds: unknown {unknown or 'none given'}; choose among "
                f"{', '.join(jepsen.FAULT_KINDS)}")

    d = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="tern-faults-"))
    say = lambda m: print(m, file=sys.stderr, flush=True)   # noqa: E731
    c = ternlocal.Cluster(d, bin=args.bin, log=lambda m: say(f"tern-local: {m}"))
    status = 2
    t0 = time.monotonic()
    try:
        c.up(args.nodes, partitions=args.partitions, spare=1 if "wipe" in kinds else 0)
        report = jepsen.run(c, rounds=args.rounds, senders=args.senders, accounts=args.accounts,
                            seed=args.seed, hold=tuple(args.hold), interval=args.interval,
                            log=say, kinds=kinds)
        print(report.table(), flush=True)
        status = 1 if report.failures() else 0
    except (AssertionError, ValueError, ternlocal.ClusterError) as e:
        say(f"faults: the run broke after {time.monotonic() - t0:.0f}s: {e}")
    except KeyboardInterrupt:
        say("faults: interrupted")
        status = 130
    finally:
        try:
            c.down()
        except ternlocal.ClusterError as e:
            say(f"faults: down: {e}")
        if status == 0 and not args.keep and not args.dir:
            shutil.rmtree(d, ignore_errors=True)
        else:
            say(f"faults: cluster dir (node logs in node<i>/log): {d}")
    return status


if __name__ == "__main__":
    sys.exit(main())
