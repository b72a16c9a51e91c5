"""A small client for a running MLflow server's REST API: what the importer reads, nothing more.

Plain urllib and JSON, so importing needs no mlflow package beside the server. Search endpoints
are paged by MLflow's `page_token`; every page is asked for as it is consumed.
"""

from __future__ import annotations

import base64
import contextlib
import json
import shutil
from collections.abc import Iterator
from typing import IO, Any
from urllib.error import HTTPError, URLError
from urllib.parse import urlencode
from urllib.request import Request, urlopen

from config.exceptions import ApplicationError

_TIMEOUT = 60
_PAGE = 1000  # runs, experiments and model versions per search page (MLflow allows these)
_METRIC_PAGE = 25_000  # points per get-history page


class MlflowSourceError(ApplicationError):
    """The MLflow server refused a request or could not be reached; the message says which."""


class MlflowSource:
    """Reads one MLflow server. `tracking_uri` is its base URL (http or https)."""

    def __init__(self, tracking_uri: str, *, token: str = "", username: str = "", password: str = ""):
        if not tracking_uri.startswith(("http://", "https://")):
            raise MlflowSourceError(f"{tracking_uri!r} is not an http(s) URL", field="tracking_uri")
        self.base = tracking_uri.rstrip("/")
        self.headers = {"Accept": "application/json"}
        if token:
            self.headers["Authorization"] = f"Bearer {token}"
        elif username:
            basic = base64.b64encode(f"{username}:{password}".encode()).decode()
            self.headers["Authorization"] = f"Basic {basic}"

    def _open(self, path: str, *, query: dict[str, Any] | None = None, body: Any = None) -> IO[bytes]:
        url = f"{self.base}{path}" + (f"?{urlencode(query, doseq=True)}" if query else "")
        data = None if body is None else json.dumps(body).encode()
        headers = {**self.headers, **({"Content-Type": "application/json"} if data else {})}
        try:
            return urlopen(
                Request(url, data=data, headers=headers), timeout=_TIMEOUT
            )  # http(s) only: checked in __init__
        except HTTPError as error:
            detail = error.read(2000).decode("utf-8", "replace")
            with contextlib.suppress(ValueError):  # not MLflow's JSON error: keep the text
                detail = json.loads(detail).get("message", detail)
            raise MlflowSourceError(f"{url}: HTTP {error.code}: {detail}", field="tracking_uri") from None
        except (URLError, OSError) as error:
            raise MlflowSourceError(f"{url}: {error}", field="tracking_uri") from None

    def _json(self, path: str, *, query: dict[str, Any] | None = None, body: Any = None) -> dict[str, Any]:
        with self._open(f"/api/2.0/mlflow/{path}", query=query, body=body) as response:
            return json.load(response)

    def _page_lists(
        self,
        path: str,
        field: str,
        *,
        body: dict[str, Any] | None = None,
        query: dict[str, Any] | None = None,
    ) -> Iterator[list[Any]]:
        """The pages of a paged search: a POST body when given, else GET parameters."""
        token = ""
        while True:
            page_token = {"page_token": token} if token else {}
            if body is not None:
                answer = self._json(path, body={**body, **page_token})
            else:
                answer = self._json(path, query={**(query or {}), **page_token})
            yield answer.get(field, [])
            token = answer.get("next_page_token", "")
            if not token:
                return

    def _pages(
        self,
        path: str,
        field: str,
        *,
        body: dict[str, Any] | None = None,
        query: dict[str, Any] | None = None,
    ) -> Iterator[Any]:
        for page in self._page_lists(path, field, body=body, query=query):
            yield from page

    # Tracking ---------------------------------------------------------------------------------

    def experiments(self, *, include_deleted: bool) -> Iterator[dict[str, Any]]:
        view = "ALL" if include_deleted else "ACTIVE_ONLY"
        return self._pages(
            "experiments/search", "experiments", body={"max_results": _PAGE, "view_type": view}
        )

    def experiment_by_name(self, name: str) -> dict[str, Any]:
        return self._json("experiments/get-by-name", query={"experiment_name": name})["experiment"]

    def experiment(self, experiment_id: str) -> dict[str, Any]:
        return self._json("experiments/get", query={"experiment_id": experiment_id})["experiment"]

    def runs(self, experiment_id: str, *, include_deleted: bool) -> Iterator[dict[str, Any]]:
        """Oldest first, so a parent run is imported before its children."""
        body = {
            "experiment_ids": [experiment_id],
            "max_results": _PAGE,
            "run_view_type": "ALL" if include_deleted else "ACTIVE_ONLY",
            "order_by": ["attributes.start_time ASC"],
        }
        return self._pages("runs/search", "runs", body=body)

    def run(self, run_id: str) -> dict[str, Any]:
        return self._json("runs/get", query={"run_id": run_id})["run"]

    def metric_history(self, run_id: str, key: str) -> Iterator[list[dict[str, Any]]]:
        """A metric's points, page by page, so a long history is never held whole."""
        return self._page_lists(
            "metrics/get-history",
            "metrics",
            query={"run_id": run_id, "metric_key": key, "max_results": _METRIC_PAGE},
        )

    def artifact_files(self, run_id: str, path: str = "") -> Iterator[dict[str, Any]]:
        """Every file (never a folder) under `path`, with its `path` and `file_size`."""
        for entry in self._pages(
            "artifacts/list", "files", query={"run_id": run_id, **({"path": path} if path else {})}
        ):
            if entry.get("is_dir"):
                yield from self.artifact_files(run_id, entry["path"])
            else:
                yield entry

    def download_artifact(self, run_id: str, path: str, destination: IO[bytes]) -> None:
        """Stream one file into `destination`; the server resolves any artifact store it uses."""
        with self._open("/get-artifact", query={"run_id": run_id, "path": path}) as response:
            shutil.copyfileobj(response, destination, 1024 * 1024)

    # Registry ---------------------------------------------------------------------------------

    def registered_models(self) -> Iterator[dict[str, Any]]:
        return self._pages("registered-models/search", "registered_models", query={"max_results": _PAGE})

    def registered_model(self, name: str) -> dict[str, Any]:
        return self._json("registered-models/get", query={"name": name})["registered_model"]

    def model_versions(self, name: str) -> Iterator[dict[str, Any]]:
        quoted = name.replace("'", "\\'")
        return self._pages(
            "model-versions/search",
            "model_versions",
            query={"filter": f"name='{quoted}'", "max_results": _PAGE},
        )
