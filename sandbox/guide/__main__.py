"""``python -m sandbox.guide [--check] [--source DIR] [--fixtures DIR] [--out DIR]``: write the
implementation guide (``make guide``), or with ``--check`` say whether the site in ``--out``
(default ``docs/guide``) is what the inputs make (exit 1 if not, naming the files)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sandbox.guide.links import check_site
from sandbox.guide.load import CONFORMANCE_DIR, FIXTURES_DIR, GUIDE_DIR, read_inputs
from sandbox.guide.publish import stale_files, write_site
from sandbox.guide.render import build


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="only compare with --out")
    parser.add_argument("--source", type=Path, default=CONFORMANCE_DIR)
    parser.add_argument("--fixtures", type=Path, default=FIXTURES_DIR)
    parser.add_argument("--out", type=Path, default=GUIDE_DIR)
    args = parser.parse_args(argv)
    site = build(read_inputs(args.source, args.fixtures))
    problems = check_site(site)
    if problems:
        print("\n".join(problems), file=sys.stderr)
        return 1
    pages = sum(1 for p in site if p.endswith(".html"))
    if args.check:
        stale = stale_files(site, args.out)
        if stale:
            print(f"{args.out} is not up to date (make guide): {', '.join(stale)}")
            return 1
        print(f"{args.out}: up to date, {pages} pages")
        return 0
    write_site(site, args.out)
    print(f"{args.out}: {pages} pages")
    return 0


if __name__ == "__main__":
    sys.exit(main())
