"""``python -m tests.soak``: run random fault schedules, check each, print the outcome counts.

Exit status 0 if every schedule held, 1 if any broke an invariant (each printed with its seed,
its plan and what broke). ``--replay SEED`` runs the schedules of the given seeds only.
"""

from __future__ import annotations

import argparse
import logging
import random
import sys
import time

from s3es.testing import EmbeddedS3, FaultProxy
from tests.soak.plan import draw
from tests.soak.run import Environment, SoakFailure, Totals, quick_botocore_backoff, run_schedule


def _say(text: str = "") -> None:
    sys.stdout.write(f"{text}\n")
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    """Run the soak; 0 if every schedule held."""
    parser = argparse.ArgumentParser(prog="python -m tests.soak", description=__doc__)
    parser.add_argument("--schedules", type=int, default=1000, help="how many (default 1000)")
    parser.add_argument("--seed", type=int, help="the seed the schedules' seeds come from")
    parser.add_argument("--replay", type=int, nargs="+", metavar="SEED", help="run these only")
    parser.add_argument(
        "--kill-every", type=int, default=8, help="one schedule in about N kills a writer process"
    )
    parser.add_argument(
        "--max-failures", type=int, default=5, help="stop after this many broken schedules"
    )
    options = parser.parse_args(argv)
    base = options.seed if options.seed is not None else random.SystemRandom().getrandbits(32)
    if options.replay:
        seeds = options.replay
    else:
        rng = random.Random(base)
        seeds = [rng.getrandbits(40) for _ in range(options.schedules)]
        _say(f"soak: {len(seeds):,} schedules from --seed {base}")
    # botocore and the proxy's server report what the faults do to them; the checks say enough.
    logging.basicConfig(level=logging.CRITICAL)
    totals = Totals()
    started = time.monotonic()
    with EmbeddedS3() as s3, FaultProxy(s3.endpoint_url) as proxy, quick_botocore_backoff():
        env = Environment.make(s3, proxy, "soak")
        for number, seed in enumerate(seeds, 1):
            plan = draw(seed, kill_every=options.kill_every)
            if options.replay:
                _say(plan.describe())
            try:
                run_schedule(env, plan, totals)
            except SoakFailure as failure:
                totals.failures.append(str(failure))
                _say(f"\nFAILED {failure}\n")
                if len(totals.failures) >= options.max_failures:
                    break
            if number % 100 == 0:
                _say(
                    f"  {number:,} schedules, {len(totals.failures)} broken, "
                    f"{time.monotonic() - started:.0f} s"
                )
    elapsed = time.monotonic() - started
    _say(f"\n{totals.schedules:,} schedules in {elapsed:.0f} s ({len(totals.failures)} broken)\n")
    _say(totals.table())
    return 1 if totals.failures else 0


if __name__ == "__main__":
    sys.exit(main())
