"""The seeded workload, its oracle and the harness/replay/benchmark client."""
