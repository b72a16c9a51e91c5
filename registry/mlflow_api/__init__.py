"""The model-registry half of the MLflow API: adapters over registry services and selectors."""
