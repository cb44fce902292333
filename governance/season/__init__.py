"""A season of simulated days: new data, retrains, refusals, promotions, rollbacks, restarts."""
