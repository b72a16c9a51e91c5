"""The MLflow-compatible API (/api/2.0/mlflow, /api/2.0/mlflow-artifacts, /api/3.0/mlflow):
thin adapters that translate MLflow's wire format to the tracker's services and selectors."""
