"""The seeded workload, its oracle and the replay/benchmark client."""
