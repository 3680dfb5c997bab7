"""Two stand-in benchmark suites for the runner's tests: one that works, one that raises."""
