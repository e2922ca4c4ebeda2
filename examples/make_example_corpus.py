"""Write Distill's example corpus (plucked strings and drums in A minor pentatonic) as WAVs.

    python examples/make_example_corpus.py [OUT_DIR] [--clips N] [--seed S]

Then: `distill dataset create example OUT_DIR`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from distill.example_corpus import write_example_corpus


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", nargs="?", default="example-corpus", type=Path,
                        help="folder to write into (default: ./example-corpus)")
    parser.add_argument("--clips", type=int, default=24, help="how many clips (default: 24)")
    parser.add_argument("--sample-rate", type=int, default=44100, help="Hz (default: 44100)")
    parser.add_argument("--seed", type=int, default=0, help="variation seed (default: 0)")
    args = parser.parse_args()
    paths = write_example_corpus(args.out_dir, args.clips, args.sample_rate, args.seed)
    print(f"wrote {len(paths)} clips to {args.out_dir}")


if __name__ == "__main__":
    main()
