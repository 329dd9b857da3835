"""``python -m bench``: run every benchmark, print the tables, write ``docs/benchmarks.md``.

The page's figures are drawn beside it, into ``docs/images/bench-*.svg``.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path

from bench.plots import draw
from bench.report import IMAGES, console, markdown
from bench.run import QUICK, BenchConfig, run
from s3es._base.logging import log_to_stderr

DOCUMENT = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"


def main(argv: Sequence[str] | None = None) -> None:
    """Run the benchmarks; write the document unless asked not to."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="tiny sizes, for a look in seconds; writes nothing unless --output is given",
    )
    parser.add_argument(
        "--output", type=Path, help=f"where to write the Markdown (default: {DOCUMENT})"
    )
    parser.add_argument("--no-write", action="store_true", help="only print the tables")
    args = parser.parse_args(argv)
    # s3es logs each append and conflict at debug and info: thousands of lines; warnings only.
    with log_to_stderr(logging.WARNING):
        results = run(QUICK if args.quick else BenchConfig())
    print(console(results), end="")
    output = args.output or (None if args.quick else DOCUMENT)
    if output is not None and not args.no_write:
        output.write_text(markdown(results), encoding="utf-8")
        figures = draw(results, output.parent / IMAGES)
        print(f"\nWrote {output} and {', '.join(str(figure) for figure in figures)}")


if __name__ == "__main__":
    main()
