#!/usr/bin/env python3
"""Independent check of a k-anonymous extract with pyCANON (https://pypi.org/project/pycanon/).

Usage: pycanon_check.py CSV --qi age,sex,... --k 10 [--sensitive icd10 --l 2]

Reads the CSV with every column as text (so NULL, written as an empty field, is a value of its
own, as kura-kanon treats it), computes k with pycanon.anonymity.k_anonymity and, when asked,
l with pycanon.anonymity.l_diversity, prints them as JSON, and exits 1 if either is below the
required value.
"""
import argparse
import json
import sys

import pandas as pd
from pycanon import anonymity


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("csv")
    parser.add_argument("--qi", required=True, help="comma-separated quasi-identifier columns")
    parser.add_argument("--k", type=int, required=True)
    parser.add_argument("--sensitive")
    parser.add_argument("--l", type=int)
    args = parser.parse_args()

    df = pd.read_csv(args.csv, dtype=str, keep_default_na=False, na_filter=False)
    qi = args.qi.split(",")
    if df.empty:
        print("the extract is empty", file=sys.stderr)
        return 1
    result = {"rows": len(df), "k": int(anonymity.k_anonymity(df, qi))}
    ok = result["k"] >= args.k
    if args.sensitive:
        result["l"] = int(anonymity.l_diversity(df, qi, [args.sensitive]))
        ok = ok and result["l"] >= args.l
    print(json.dumps(result))
    if not ok:
        print(f"not anonymous enough: required k={args.k} l={args.l}, got {result}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
