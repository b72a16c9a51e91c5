"""A one-hidden-layer MLP in NumPy, trained on a generated three-spiral dataset.

The demo's runs must come from real training, so that the charts, the run table's filters and
the "why this model?" page show what they would for a team's own runs. Only NumPy is certain
to be installed, so the data and the model are written here, small enough that a 3 x 3 sweep
takes a few seconds on two cores. Everything is seeded: the same call gives the same numbers.
"""

from __future__ import annotations

import hashlib
import io
import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass

import numpy as np

DATASET_NAME = "three-spirals"
N_CLASSES = 3


@dataclass(frozen=True)
class SpiralRecipe:
    samples_per_class: int
    noise: float  # standard deviation of the angle jitter, in radians
    turns: float
    seed: int


# Two published versions, so the run table has a dataset version to filter on: 2.1 doubled
# the samples and reduced the noise of 2.0.
DATASET_VERSIONS = {
    "2.0": SpiralRecipe(samples_per_class=200, noise=0.35, turns=1.0, seed=20),
    "2.1": SpiralRecipe(samples_per_class=400, noise=0.2, turns=1.0, seed=21),
}


@dataclass(frozen=True)
class Dataset:
    name: str
    version: str
    recipe: SpiralRecipe
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray

    def digest(self, split: str) -> str:
        """sha256 of a split's exact bytes: a changed sample changes the recorded digest."""
        x, y = (self.x_train, self.y_train) if split == "training" else (self.x_val, self.y_val)
        return hashlib.sha256(x.tobytes() + y.tobytes()).hexdigest()


def make_dataset(version: str = "2.1", *, val_fraction: float = 0.2) -> Dataset:
    """Three interleaved spirals with angular noise: not linearly separable, so a hidden layer
    and the learning rate visibly matter."""
    recipe = DATASET_VERSIONS[version]
    rng = np.random.default_rng(recipe.seed)
    n = recipe.samples_per_class
    radius = np.linspace(0.1, 1.0, n)
    xs, ys = [], []
    for label in range(N_CLASSES):
        angle = (
            label * 2 * math.pi / N_CLASSES
            + radius * recipe.turns * 2 * math.pi
            + rng.normal(0.0, recipe.noise, n)
        )
        xs.append(np.column_stack([radius * np.sin(angle), radius * np.cos(angle)]))
        ys.append(np.full(n, label, dtype=np.int64))
    x, y = np.concatenate(xs), np.concatenate(ys)
    order = rng.permutation(len(y))
    x, y = x[order], y[order]
    cut = int(len(y) * (1 - val_fraction))
    return Dataset(DATASET_NAME, version, recipe, x[:cut], y[:cut], x[cut:], y[cut:])


@dataclass
class MLP:
    """2 → hidden (tanh) → 3 (softmax); weights live here so the caller can save them."""

    w1: np.ndarray
    b1: np.ndarray
    w2: np.ndarray
    b2: np.ndarray

    @classmethod
    def initial(cls, *, n_in: int, hidden: int, n_out: int, seed: int) -> MLP:
        rng = np.random.default_rng(seed)
        # Xavier-style scale keeps tanh out of saturation at the start.
        return cls(
            w1=rng.normal(0.0, math.sqrt(1.0 / n_in), (n_in, hidden)),
            b1=np.zeros(hidden),
            w2=rng.normal(0.0, math.sqrt(1.0 / hidden), (hidden, n_out)),
            b2=np.zeros(n_out),
        )

    def forward(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        hidden = np.tanh(x @ self.w1 + self.b1)
        logits = hidden @ self.w2 + self.b2
        logits -= logits.max(axis=1, keepdims=True)  # stable softmax
        probs = np.exp(logits)
        probs /= probs.sum(axis=1, keepdims=True)
        return hidden, probs

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.forward(x)[1].argmax(axis=1)

    def to_npz(self) -> bytes:
        buffer = io.BytesIO()
        np.savez(buffer, w1=self.w1, b1=self.b1, w2=self.w2, b2=self.b2)
        return buffer.getvalue()


def cross_entropy(probs: np.ndarray, y: np.ndarray) -> float:
    return float(-np.log(np.clip(probs[np.arange(len(y)), y], 1e-12, None)).mean())


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int = N_CLASSES) -> np.ndarray:
    matrix = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(matrix, (y_true, y_pred), 1)
    return matrix


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int = N_CLASSES) -> float:
    """Unweighted mean of per-class F1, so a model that ignores one spiral cannot score well."""
    matrix = confusion_matrix(y_true, y_pred, n_classes)
    true_pos = np.diag(matrix).astype(float)
    denominator = matrix.sum(axis=0) + matrix.sum(axis=1)  # predicted + actual per class
    scores = np.divide(2 * true_pos, denominator, out=np.zeros(n_classes), where=denominator > 0)
    return float(scores.mean())


@dataclass(frozen=True)
class EpochMetrics:
    epoch: int
    train_loss: float
    train_accuracy: float
    val_loss: float
    val_accuracy: float
    val_f1: float

    def as_dict(self) -> dict[str, float]:
        values = asdict(self)
        del values["epoch"]
        return values


class TrainingDiverged(Exception):
    """The loss blew up; a real training script would stop and report the run as failed."""

    def __init__(self, epoch: int, loss: float) -> None:
        super().__init__(f"training loss reached {loss:.3g} at epoch {epoch}; the learning rate is too high")
        self.epoch = epoch


# Ten times the loss of a uniform guess: no useful model is ever that wrong.
DIVERGED_LOSS = 10 * math.log(N_CLASSES)


def train(
    model: MLP,
    data: Dataset,
    *,
    lr: float,
    weight_decay: float,
    epochs: int,
    batch_size: int,
    seed: int,
    momentum: float = 0.9,
) -> Iterator[EpochMetrics]:
    """Mini-batch SGD with momentum and L2 weight decay, updating `model` in place.

    Yields each epoch's metrics as soon as they exist, as a training loop that logs per epoch
    would; raises TrainingDiverged after yielding an epoch whose loss exploded.
    """
    rng = np.random.default_rng(seed)
    params = [model.w1, model.b1, model.w2, model.b2]
    velocity = [np.zeros_like(p) for p in params]
    n = len(data.y_train)
    with np.errstate(over="ignore", invalid="ignore"):
        for epoch in range(1, epochs + 1):
            order = rng.permutation(n)
            for start in range(0, n, batch_size):
                batch = order[start : start + batch_size]
                x, y = data.x_train[batch], data.y_train[batch]
                hidden, probs = model.forward(x)
                # Softmax + cross-entropy gradient, averaged over the batch.
                d_logits = probs
                d_logits[np.arange(len(y)), y] -= 1.0
                d_logits /= len(y)
                d_hidden = (d_logits @ model.w2.T) * (1.0 - hidden**2)
                grads = [
                    x.T @ d_hidden + weight_decay * model.w1,
                    d_hidden.sum(axis=0),
                    hidden.T @ d_logits + weight_decay * model.w2,
                    d_logits.sum(axis=0),
                ]
                for param, grad, vel in zip(params, grads, velocity, strict=True):
                    vel *= momentum
                    vel -= lr * grad
                    param += vel
            metrics = _evaluate(model, data, epoch)
            yield metrics
            if not math.isfinite(metrics.train_loss) or metrics.train_loss > DIVERGED_LOSS:
                raise TrainingDiverged(epoch, metrics.train_loss)


def _evaluate(model: MLP, data: Dataset, epoch: int) -> EpochMetrics:
    _, train_probs = model.forward(data.x_train)
    _, val_probs = model.forward(data.x_val)
    val_pred = val_probs.argmax(axis=1)
    return EpochMetrics(
        epoch=epoch,
        train_loss=cross_entropy(train_probs, data.y_train),
        train_accuracy=float((train_probs.argmax(axis=1) == data.y_train).mean()),
        val_loss=cross_entropy(val_probs, data.y_val),
        val_accuracy=float((val_pred == data.y_val).mean()),
        val_f1=macro_f1(data.y_val, val_pred),
    )
