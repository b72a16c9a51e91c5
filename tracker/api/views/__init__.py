"""Tracker API views, one class per operation, grouped by resource."""
