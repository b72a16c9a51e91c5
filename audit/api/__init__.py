"""The audit trail's read-only REST API under /api/v1/audit."""
