"""The penguin model server."""
