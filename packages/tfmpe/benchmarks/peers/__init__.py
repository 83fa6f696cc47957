"""Peers of the tfmpe benchmarks: one function per peer, same signature."""
