"""Peers of scribe's benchmarks: the implementations scribe is compared with."""
