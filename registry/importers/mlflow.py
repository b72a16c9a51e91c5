"""Copying registered models, their versions and aliases (and legacy stages) from MLflow.

Models are found by name, versions by their MLflow number (kept as ours), so a repeated import
writes nothing. A version's run is imported on demand (`RunImporter.run_by_id`): a version here
always names its run. Labels move through `move_label` like every other path; one the model's
promotion policy protects is never moved directly: the import warns, or with
`request_promotions` opens a promotion request for reviewers to decide.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from config.exceptions import AlreadyExists, ApplicationError, Conflict
from config.inputs import TagInput
from registry import services
from registry.models import AliasHistory, Label, ModelVersion, RegisteredModel, Stage
from registry.selectors import label_holder, policy_for
from tracker.importers.mlflow import (
    ImportReport,
    Progress,
    RunImporter,
    named_or_all,
    no_progress,
    tag_pairs,
)


@dataclass
class RegistryCounts:
    """What a registry import wrote; zero everywhere on a repeated import."""

    models_created: int = 0
    versions_created: int = 0
    labels_moved: int = 0
    promotions_requested: int = 0


class RegistryImporter:
    """Registered models of one MLflow server, copied for `actor` (a contributor)."""

    def __init__(
        self,
        *,
        runs: RunImporter,
        request_promotions: bool = False,
        progress: Progress = no_progress,
    ) -> None:
        self.runs = runs
        self.source = runs.source
        self.actor = runs.actor
        self.report: ImportReport = runs.report  # warnings and failures are shared with the runs'
        self.counts = RegistryCounts()
        self.request_promotions = request_promotions
        self.progress = progress

    def import_models(self, names: Sequence[str] = ()) -> None:
        """The named models (all when none are named), each with every version and label."""
        found = named_or_all(
            names,
            get=self.source.registered_model,
            everything=self.source.registered_models,
            what="registered model",
            failures=self.report.failures,
        )
        for remote in self.progress(found, "registered models"):
            try:
                self.import_model(remote)
            except ApplicationError as error:
                self.report.failures.append(f"registered model {remote['name']!r}: {error}")

    def import_model(self, remote: dict[str, Any]) -> None:
        name = remote["name"]
        model = RegisteredModel.objects.filter(name=name).first()
        tags = tag_pairs(remote.get("tags"))
        if model is None:
            model = services.create_registered_model(
                actor=self.actor,
                name=name,
                description=remote.get("description", ""),
                tags=[TagInput(key, value) for key, value in tags.items()],
            )
            self.counts.models_created += 1
        else:
            self._update_model(model, remote.get("description", ""), tags)
        versions: dict[int, ModelVersion] = {}
        for item in sorted(self.source.model_versions(name), key=lambda item: int(item["version"])):
            version = self._version(model, item)
            if version is not None:
                versions[version.version] = version
                if (stage := item.get("current_stage") or Stage.NONE) != version.stage:
                    self._move(model, Label.stage(stage), version)
        for alias in remote.get("aliases", []):
            version = versions.get(int(alias["version"]))
            if version is None:
                self.report.warnings.append(
                    f"{name!r}: alias {alias['alias']!r} points at version {alias['version']}, not imported"
                )
            elif (
                getattr(label_holder(model=model, label=Label.alias(alias["alias"])), "pk", None)
                != version.pk
            ):
                self._move(model, Label.alias(alias["alias"]), version)

    def _update_model(self, model: RegisteredModel, description: str, tags: dict[str, str]) -> None:
        if description != model.description:
            services.update_registered_model(actor=self.actor, model=model, description=description)
        stored = dict(model.tags.values_list("key", "value"))
        for key, value in tags.items():
            if stored.get(key) != value:
                services.set_registered_model_tag(actor=self.actor, model=model, tag=TagInput(key, value))

    def _version(self, model: RegisteredModel, item: dict[str, Any]) -> ModelVersion | None:
        """The version here with the MLflow number, created when missing (with its run)."""
        number = int(item["version"])
        where = f"{model.name!r} version {number}"
        existing = ModelVersion.all_objects.filter(model=model, version=number).first()
        if existing is not None:
            return None if existing.is_deleted else existing
        if item.get("status", "READY") != "READY":
            self.report.warnings.append(f"{where} is {item['status']} in MLflow: not imported")
            return None
        run = self.runs.run_by_id(item["run_id"]) if item.get("run_id") else None
        if run is None:
            self.report.failures.append(
                f"{where}: its run {item.get('run_id') or '(none)'} could not be imported"
            )
            return None
        try:
            version = services.create_model_version(
                actor=self.actor,
                model=model,
                run=run,
                number=number,
                source=item.get("source", ""),
                description=item.get("description", ""),
                run_link=item.get("run_link", ""),
                tags=[TagInput(key, value) for key, value in tag_pairs(item.get("tags")).items()],
            )
        except ApplicationError as error:
            self.report.failures.append(f"{where}: {error}")
            return None
        self.counts.versions_created += 1
        return version

    def _move(self, model: RegisteredModel, label: Label, version: ModelVersion) -> None:
        """Point the label at the version, unless the policy protects it: then a warning, or a
        promotion request that reviewers decide."""
        where = f"{model.name!r}: {label} → version {version.version}"
        policy = policy_for(model=model)
        leaving = label.kind == AliasHistory.Kind.STAGE and policy.protects(Label.stage(version.stage))
        if not (policy.protects(label) or leaving):
            try:
                services.move_label(actor=self.actor, model=model, label=label, version=version)
            except ApplicationError as error:
                self.report.failures.append(f"{where}: {error}")
                return
            self.counts.labels_moved += 1
            return
        if not self.request_promotions or leaving:
            self.report.warnings.append(
                f"{where} is protected by the promotion policy: not moved"
                + ("" if leaving else "; --request-promotions opens a promotion request")
            )
            return
        try:
            request = services.request_promotion(
                actor=self.actor,
                version=version,
                label=label,
                justification=f"Imported from MLflow ({self.source.base}): there {label} is on version "
                f"{version.version}.",
            )
        except (AlreadyExists, Conflict) as error:  # asked for by an earlier import, or held already
            self.report.warnings.append(f"{where}: {error.message}")
            return
        self.counts.promotions_requested += 1
        self.report.warnings.append(f"{where} is protected: promotion request #{request.pk} opened")
