"""Importers that copy registered models from other registries through the registry services."""
