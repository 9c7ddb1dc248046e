"""Tooling of the medhub repository (not part of the installed package): fuzzers, generators of the
checkout's model cards and Space folders. Run from the repository root."""
