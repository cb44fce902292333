"""OpenLineage events for every materialization and check, behind a durable outbox."""
