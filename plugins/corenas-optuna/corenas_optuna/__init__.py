"""corenas-optuna: Optuna's samplers (TPE, NSGA-II, GP) as corenas controllers."""
