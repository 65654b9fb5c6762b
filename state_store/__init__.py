"""The on-disk format of runs: an append-only event log and an atomic snapshot per run."""
