"""The registry's native REST API under /api/v1/models: thin views over registry services."""
