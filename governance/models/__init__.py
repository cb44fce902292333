"""Model versions: train on a governed dataset version, track and register in MLflow, gate, alias."""
