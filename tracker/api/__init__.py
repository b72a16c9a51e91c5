"""The tracker's native REST API under /api/v1: thin views over tracker services and selectors."""
