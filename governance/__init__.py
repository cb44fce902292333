"""Governance library: versioned datasets, gated models, hermetic images, blue/green releases.

Plain Python with no Dagster import, so the CLI, the Dagster code location and the tests all call
the same functions.
"""
