"""Alerts to people (Slack incoming webhooks)."""
