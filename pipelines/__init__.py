"""The Dagster code location: wiring, metadata and checks over the `governance` library."""
