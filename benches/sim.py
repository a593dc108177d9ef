#!/usr/bin/env python3
"""The long deterministic-simulation run: many seeds of the in-process 3-node (or 5-node) cluster of
crates/raft/tests/sim.rs (real openraft, RocksDB and state machine under message loss, delay,
reordering, partitions, crashes with restart and a disk wipe), with a summary.

    export CARGO_TARGET_DIR=/var/tmp/tern-sim
    benches/sim.py --seeds 1000               # seeds 1..1000
    benches/sim.py --seeds 200 --first 5000   # seeds 5000..5199
    benches/sim.py --seeds 200 --nodes 5      # five nodes, three voters per group

Prints one line per seed, then seeds run, simulated hours, wall time and the failing seeds, each
with the command that runs it again. Exit status 0 when every seed ran clean, 1 otherwise.
"""

import argparse
import os
import re
import subprocess
import sys
import time

LINE = re.compile(r"^sim seed=(\d+) simulated=([\d.]+)s acked=(\d+) unknown=(\d+) .* wall=([\d.]+)s")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, default=100, help="how many seeds")
    p.add_argument("--first", type=int, default=1, help="the first seed")
    p.add_argument("--batch", type=int, default=50, help="seeds per test process")
    p.add_argument("--nodes", type=int, default=3, choices=(3, 4, 5), help="nodes per run")
    args = p.parse_args(argv)

    started = time.monotonic()
    simulated = acked = unknown = runs = 0
    failing = []
    seed = args.first
    end = args.first + args.seeds
    while seed < end:
        count = min(args.batch, end - seed)
        env = dict(os.environ, TERN_SIM_FIRST=str(seed), TERN_SIM_SEEDS=str(count),
                   TERN_SIM_NODES=str(args.nodes))
        proc = subprocess.run(
            ["cargo", "test", "--release", "-q", "-p", "tern-raft", "--test", "sim",
             "seeds_run_clean", "--", "--nocapture"],
            env=env, capture_output=True, text=True)
        seen = set()
        for line in proc.stdout.splitlines():
            m = LINE.match(line)
            if m:
                runs += 1
                seen.add(int(m.group(1)))
                simulated += float(m.group(2))
                acked += int(m.group(3))
                unknown += int(m.group(4))
                print(line, flush=True)
            elif line.startswith("  "):
                print(line, flush=True)
        for s in range(seed, seed + count):
            bad = s not in seen or f"TERN_SIM_SEED={s} " in proc.stdout
            if bad:
                failing.append(s)
        if proc.returncode != 0 and not failing:
            print(proc.stdout[-4000:], proc.stderr[-4000:], file=sys.stderr)
            failing.extend(range(seed, seed + count))
        seed += count

    wall = time.monotonic() - started
    print(f"\nseeds run: {runs} of {args.seeds}")
    print(f"simulated: {simulated / 3600:.2f} h ({simulated:.0f} s)")
    print(f"operations acknowledged: {acked}, outcome unknown: {unknown}")
    print(f"wall time: {wall:.0f} s")
    print(f"failing seeds: {len(failing)}")
    for s in failing:
        print(f"  TERN_SIM_SEED={s} TERN_SIM_NODES={args.nodes} cargo test --release -p tern-raft --test sim "
              f"seeds_run_clean -- --nocapture")
    return 1 if failing else 0


if __name__ == "__main__":
    sys.exit(main())
