"""Baseline for benches/run.sh: parse an LDIF file with PyPI's `ldif` 4.3 and count entries."""

import sys

import ldif

with open(sys.argv[1], "rb") as f:
    entries = sum(1 for _ in ldif.LDIFParser(f).parse())
print(entries)
