"""Local servers that speak providers' real protocols, for tests and benchmarks."""
