#!/usr/bin/env python3
"""Generates a bulkpatch input CSV for benchmarks.

usage: gen_csv.py ROWS OUT [--customers N] [--grouped] [--seed S]

Header `customer_id,user_id,usage_location`; ROWS rows over N customers (default 50), each
row a unique (customer, user) pair (the user GUID ends in the row number, so it is unique
by construction), and a random valid ISO 3166-1 alpha-2 country code. Deterministic for a
seed. About 1 s per million rows.

Customers are drawn at random per row, unless --grouped: then the file is sorted by customer
(as a per-customer export is), each customer a contiguous block of ROWS / N rows (the first
ROWS % N customers one more).
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


def grouped_index(row: int, rows: int, customers: int) -> int:
    """The customer of ROW when ROWS rows are split into CUSTOMERS contiguous blocks whose
    sizes differ by at most one (the larger blocks first)."""
    size, extra = divmod(rows, customers)
    big = extra * (size + 1)  # rows in the first `extra` blocks, one row larger each
    if row < big:
        return row // (size + 1)
    return extra + (row - big) // size


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rows", type=int)
    parser.add_argument("out")
    parser.add_argument("--customers", type=int, default=50)
    parser.add_argument(
        "--grouped", action="store_true", help="rows sorted by customer, in equal blocks"
    )
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if args.rows < 0 or args.customers < 1:
        parser.error("rows must be >= 0 and customers >= 1")
    if args.rows >= 16**12:
        parser.error("too many rows")

    rnd = random.Random(args.seed)
    customers = [guid(rnd.randbytes(16).hex()) for _ in range(args.customers)]
    if args.grouped:
        customers.sort()
    with open(args.out, "w", encoding="ascii", newline="\n") as f:
        f.write("customer_id,user_id,usage_location\n")
        for start in range(0, args.rows, CHUNK):
            n = min(CHUNK, args.rows - start)
            # 20 random hex digits per user; the last 12 are the row number.
            hexs = rnd.randbytes(10 * n).hex()
            if args.grouped:
                custs = [
                    customers[grouped_index(start + j, args.rows, args.customers)]
                    for j in range(n)
                ]
            else:
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
