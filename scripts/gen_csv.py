#!/usr/bin/env python3
"""Generates a bulkpatch input CSV for benchmarks.

usage: gen_csv.py ROWS OUT [--customers N] [--seed S]

Header `customer_id,user_id,usage_location`; ROWS rows over N customers (default 50), each
row a unique (customer, user) pair (the user GUID ends in the row number, so it is unique
by construction), and a random valid ISO 3166-1 alpha-2 country code. Deterministic for a
seed. About 1 s per million rows.
"""

import argparse
import random
import sys

COUNTRIES = (
    "US GB DE FR NL PL AT CH IT ES SE NO DK FI IE BE PT CZ HU RO "
    "JP AU NZ CA BR MX IN SG ZA AE IL KR TW HK AR CL CO TR GR LU"
).split()

CHUNK = 100_000


def guid(hex32: str) -> str:
    h = hex32
    return f"{h[0:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rows", type=int)
    parser.add_argument("out")
    parser.add_argument("--customers", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if args.rows < 0 or args.customers < 1:
        parser.error("rows must be >= 0 and customers >= 1")
    if args.rows >= 16**12:
        parser.error("too many rows")

    rnd = random.Random(args.seed)
    customers = [guid(rnd.randbytes(16).hex()) for _ in range(args.customers)]
    with open(args.out, "w", encoding="ascii", newline="\n") as f:
        f.write("customer_id,user_id,usage_location\n")
        for start in range(0, args.rows, CHUNK):
            n = min(CHUNK, args.rows - start)
            # 20 random hex digits per user; the last 12 are the row number.
            hexs = rnd.randbytes(10 * n).hex()
            custs = rnd.choices(customers, k=n)
            ccs = rnd.choices(COUNTRIES, k=n)
            lines = []
            for j in range(n):
                h = hexs[20 * j : 20 * j + 20]
                lines.append(
                    f"{custs[j]},{h[0:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{start + j:012x},{ccs[j]}\n"
                )
            f.write("".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
