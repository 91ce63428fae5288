"""Performance estimation: datasets, training, weight inheritance, proxies, predictors, tabular data."""
