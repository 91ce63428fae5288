"""Search engine: strategies, constraints, Pareto fronts, journal, runner and executors."""
