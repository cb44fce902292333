"""Governed datasets: read with a schema, clean, validate with Great Expectations, version with DVC."""
