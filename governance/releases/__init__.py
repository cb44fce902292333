"""Releases: candidates of exact versions, gates, blue/green targets and the controller."""
