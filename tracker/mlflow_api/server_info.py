"""GET /api/3.0/mlflow/server-info: the capabilities the client probes before downloads."""

from __future__ import annotations

from typing import Any

from .protocol import Call, Endpoint


def get_server_info(call: Call) -> dict[str, Any]:
    # Files go through this server in one request each: no multipart or presigned transfers.
    return {
        "store_type": "LabLedger",
        "workspaces_enabled": False,
        "trace_archival_enabled": False,
        "multipart_uploads_enabled": False,
        "multipart_downloads_enabled": False,
        "presigned_upload_run_id_supported": False,
        "presigned_upload_model_id_supported": False,
        "features_enabled": {},
    }


server_info = [Endpoint("GET", "server-info", get_server_info)]
