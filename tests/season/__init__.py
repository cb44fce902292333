"""Seasons: many days of the platform's use on one home, each day's invariants checked."""
