"""A tamper-evident audit log: append-only records, each hashing its content and its predecessor."""
