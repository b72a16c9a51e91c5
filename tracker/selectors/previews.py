"""What a run page shows of an artifact without downloading it: images inline, the first lines
of text files."""

from __future__ import annotations

import posixpath
from dataclasses import dataclass

from tracker.models import Artifact

IMAGE_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
}
# SVG is left out on purpose: it may carry scripts, so it is only ever downloaded.
TEXT_SUFFIXES = {
    ".txt",
    ".log",
    ".json",
    ".jsonl",
    ".csv",
    ".tsv",
    ".yaml",
    ".yml",
    ".md",
    ".toml",
    ".ini",
    ".cfg",
    ".py",
}
TEXT_NAMES = {"MLmodel", "requirements.txt", "conda.yaml", "python_env.yaml"}
PREVIEW_LINES = 20
PREVIEW_BYTES = 8192
MAX_PREVIEWS = 20  # previews read files; a run with thousands of artifacts previews the first few


@dataclass(frozen=True)
class ArtifactPreview:
    artifact: Artifact
    kind: str  # "image", "text" or "" (download only)
    text: str = ""
    truncated: bool = False


def image_type(path: str) -> str | None:
    return IMAGE_TYPES.get(posixpath.splitext(path)[1].lower())


def _is_text(path: str) -> bool:
    return posixpath.basename(path) in TEXT_NAMES or posixpath.splitext(path)[1].lower() in TEXT_SUFFIXES


def _head(artifact: Artifact) -> tuple[str, bool]:
    with artifact.file.open("rb") as handle:
        data = handle.read(PREVIEW_BYTES + 1)
    cut = len(data) > PREVIEW_BYTES
    text = data[:PREVIEW_BYTES].decode("utf-8", errors="replace")
    lines = text.splitlines()
    return "\n".join(lines[:PREVIEW_LINES]), cut or len(lines) > PREVIEW_LINES


def artifact_previews(*, artifacts: list[Artifact]) -> list[ArtifactPreview]:
    """A preview per artifact: the page escapes the text; unreadable files fall back to download."""
    previews = []
    for index, artifact in enumerate(artifacts):
        if index >= MAX_PREVIEWS:
            previews.append(ArtifactPreview(artifact, ""))
        elif image_type(artifact.path):
            previews.append(ArtifactPreview(artifact, "image"))
        elif _is_text(artifact.path):
            try:
                text, truncated = _head(artifact)
            except OSError:  # the file is gone from storage: the row still lists it
                previews.append(ArtifactPreview(artifact, ""))
                continue
            previews.append(ArtifactPreview(artifact, "text", text, truncated))
        else:
            previews.append(ArtifactPreview(artifact, ""))
    return previews
