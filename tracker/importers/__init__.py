"""Importers that copy runs from other trackers through the same services as every path."""
