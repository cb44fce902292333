"""Container images of the apps: lockfile consistency first (more to come: policy, builds)."""
