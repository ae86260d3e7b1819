"""What a training run is: one schema (:class:`TrainConfig`) that checks itself, and recipe files.

A recipe (``recipes/shipped.toml``) lists the stages of a model's training, each a
set of :class:`TrainConfig` fields, with a ``[common]`` table shared by all of
them. ``draw2digit train --recipe FILE`` runs them in order; ``--set FIELD=VALUE``
changes a field for an experiment, and the model card records both.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from draw2digit.training import pendigits

#: named groups of pen writers a recipe (or --set pen_writers=...) may use
WRITER_GROUPS = {
    "fit": pendigits.FIT_WRITERS,
    "tuning": pendigits.TUNE_WRITERS,
    "heldout": pendigits.HELDOUT_WRITERS,
    "all": pendigits.WRITERS,
}


class ConfigError(ValueError):
    """A recipe or field the user can fix; the message names the field."""


def writers_from(value: Any, field_name: str = "pen_writers") -> tuple[int, ...]:
    """``fit``, ``tuning``, ``heldout``, ``all``, ``"5,7,14"`` or a list of writer numbers."""
    if isinstance(value, str) and value in WRITER_GROUPS:
        return tuple(WRITER_GROUPS[value])
    try:
        parts = value.split(",") if isinstance(value, str) else list(value)
        writers = tuple(int(w) for w in parts)
    except (TypeError, ValueError):
        raise ConfigError(
            f"{field_name} takes {', '.join(WRITER_GROUPS)} or writer numbers like 5,7,14, not {value!r}"
        ) from None
    if not writers or not set(writers) <= set(pendigits.WRITERS):
        raise ConfigError(
            f"{field_name}: writers are numbered {pendigits.WRITERS[0]} to {pendigits.WRITERS[-1]}"
        )
    return writers


def _class_weights(value: Any) -> tuple[tuple[int, float], ...]:
    """``{7 = 3, 9 = 2}``, ``"7:3,9:2"`` or pairs -> ((7, 3.0), (9, 2.0)), each digit 0-9 once."""
    try:
        if isinstance(value, dict):
            pairs = [(int(k), float(v)) for k, v in value.items()]
        elif isinstance(value, str):
            pairs = [(int(d), float(w)) for d, _, w in (p.strip().partition(":") for p in value.split(","))]
        else:
            pairs = [(int(d), float(w)) for d, w in value]
    except (TypeError, ValueError):
        pairs = None
    if (
        pairs is None
        or any(not (0 <= d <= 9 and w > 0) for d, w in pairs)
        or len({d for d, _ in pairs}) < len(pairs)
    ):
        raise ConfigError(
            "mnist_class_weights: digit:weight pairs like 7:3,9:2 (each digit 0-9 once, weights over 0), "
            f"not {value!r}"
        )
    return tuple(sorted(pairs))


@dataclass(frozen=True)
class TrainConfig:
    """Every choice a training run makes; invalid combinations fail here, before any work."""

    epochs: int = 36
    batch_size: int = 128
    learning_rate: float = 2e-3
    warmup_epochs: float = 1.0
    width: int = 32
    dropout: float = 0.4
    validation_size: int = 5000
    augment: bool = True
    rotation_degrees: float = 10.0
    zoom: float = 0.10
    shift: float = 0.10
    shear_degrees: float = 10.0
    seed: int = 42
    limit: int | None = None  # train on the first N shuffled images (quick runs, tests)
    pen_copies: int = 0  # augmented canvas drawings of each real pen digit
    pen_writers: tuple[int, ...] | None = None  # default: pendigits.FIT_WRITERS
    pen_perturb: float = 1.0  # pendigits.perturb's strength: how far each copy's strokes are bent
    cut_pieces: int = 0  # touching pairs of pen digits cut as the number reader cuts them (its pieces)
    non_digits: int = 0  # drawings of the "not a digit" class; 0 = ten classes
    extra_shapes: bool = False  # the non-digits also draw synthetic.EXTRA_FIT_SHAPES
    init_from: str | None = None  # start from this model's weights
    distill_from: str | None = None  # keep MNIST answers close to this model's (see make_dataset)
    distill_weight: float = 0.5
    mnist_class_weights: tuple[tuple[int, float], ...] = ()  # (digit, weight): its MNIST rows' loss weight
    quantize: bool = False  # serve int8 weights (export.save_model): faster, a few drawings apart

    def __post_init__(self) -> None:
        if self.pen_writers is not None:
            object.__setattr__(self, "pen_writers", writers_from(self.pen_writers))
        object.__setattr__(self, "mnist_class_weights", _class_weights(self.mnist_class_weights or {}))
        for name in ("epochs", "batch_size", "width"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, not {getattr(self, name)}")
        for name in ("pen_copies", "cut_pieces", "non_digits", "validation_size"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be 0 or more, not {getattr(self, name)}")
        if self.limit is not None and self.limit < 1:
            raise ConfigError(f"limit must be at least 1, not {self.limit}")
        if not self.learning_rate > 0 or self.warmup_epochs < 0:
            raise ConfigError("learning_rate must be over 0 and warmup_epochs 0 or more")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout is a share from 0 to below 1, not {self.dropout}")
        if not 0.0 <= self.distill_weight <= 1.0:
            raise ConfigError(f"distill_weight is a share between 0 and 1, not {self.distill_weight}")
        needs_pen = {"pen_writers": self.pen_writers, "cut_pieces": self.cut_pieces}
        needs_pen["pen_perturb"] = self.pen_perturb != 1.0
        for name, used in needs_pen.items():
            if used and not self.pen_copies:
                raise ConfigError(f"{name} shapes the pen digits: it needs pen_copies of 1 or more")
        if self.pen_perturb < 0:
            raise ConfigError(f"pen_perturb is a strength of 0 or more, not {self.pen_perturb}")
        if self.extra_shapes and not self.non_digits:
            raise ConfigError("extra_shapes widens the non-digits: it needs non_digits of 1 or more")

    @property
    def writers(self) -> tuple[int, ...]:
        """The pen writers this run learns from (the fit writers unless it says otherwise)."""
        return tuple(self.pen_writers or pendigits.FIT_WRITERS)

    @classmethod
    def fields(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        """A config from a recipe's table: unknown fields and wrong types are errors naming the field."""
        known = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ConfigError(f"unknown field {unknown[0]!r}; the fields are: {', '.join(known)}")
        defaults = cls()
        typed = {}
        for name, value in values.items():
            default = getattr(defaults, name)
            if isinstance(default, bool):
                if not isinstance(value, bool):
                    raise ConfigError(f"{name} is true or false, not {value!r}")
            elif isinstance(default, int | float) and not isinstance(value, bool):
                try:
                    value = type(default)(value)
                except (TypeError, ValueError):
                    raise ConfigError(f"{name} is a number, not {value!r}") from None
                if isinstance(default, int) and value != values[name]:
                    raise ConfigError(f"{name} is a whole number, not {values[name]!r}")
            elif (
                name == "limit"
                and value is not None
                and (isinstance(value, bool) or not isinstance(value, int))
            ):
                raise ConfigError(f"limit is a whole number, not {value!r}")
            typed[name] = value
        return cls(**typed)

    def to_dict(self) -> dict[str, Any]:
        """The config as the model card records it."""
        out = dataclasses.asdict(self)
        out["mnist_class_weights"] = [list(p) for p in self.mnist_class_weights]
        out["pen_writers"] = list(self.pen_writers) if self.pen_writers else None
        return out


def parse_override(text: str) -> tuple[str, Any]:
    """``FIELD=VALUE`` with VALUE read as TOML (``epochs=2``, ``quantize=true``), else as text.

    ``STAGE.FIELD=VALUE`` names the field of one stage of a recipe; the name comes back as given.
    """
    name, sep, raw = text.partition("=")
    stage, dot, name = name.strip().rpartition(".")
    name = name.replace("-", "_")
    if not sep or not name:
        raise ConfigError(f"--set takes FIELD=VALUE, like epochs=2, not {text!r}")
    if name not in TrainConfig.fields():
        raise ConfigError(f"unknown field {name!r}; the fields are: {', '.join(TrainConfig.fields())}")
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    return f"{stage}{dot}{name}", value


@dataclass(frozen=True)
class Stage:
    """One run of a recipe: its name, the folder it writes, and its config."""

    name: str
    out: Path
    config: TrainConfig
    recipe: dict[str, Any] = field(default_factory=dict)  # what the model card records


STAGE_PREFIX = "stage:"  # init_from = "stage:base" starts from an earlier stage's model


def load_recipe(
    path: str | Path, overrides: list[str] | tuple[str, ...] = (), out: str | None = None
) -> list[Stage]:
    """The stages of a recipe file, with ``overrides`` (``FIELD=VALUE``) applied to every stage.

    ``out`` moves the last stage's folder; earlier stages then write ``<out>-<stage>``.
    """
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"no recipe at {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    stages = data.get("stages")
    if not isinstance(stages, list) or not stages:
        raise ConfigError(f"{path} has no [[stages]]")
    common = data.get("common", {})
    changed = dict(parse_override(o) for o in overrides)
    names = [str(s.get("name", "")) for s in stages]
    if "" in names or len(set(names)) < len(names):
        raise ConfigError(f"{path}: every stage needs a name of its own")
    for key in changed:
        if "." in key and key.split(".")[0] not in names:
            raise ConfigError(f"--set {key}: {path} has no stage {key.split('.')[0]!r} ({', '.join(names)})")
    folders: dict[str, Path] = {}
    result = []
    for i, table in enumerate(stages):
        name = names[i]
        last = i == len(stages) - 1
        mine = {k.split(".")[-1]: v for k, v in changed.items() if "." not in k or k.startswith(f"{name}.")}
        values = {**common, **{k: v for k, v in table.items() if k not in ("name", "out")}, **mine}
        if out:
            folder = Path(out) if last else Path(f"{out}-{name}")
        elif "out" in table:
            folder = Path(table["out"])
        else:
            raise ConfigError(f"{path}: stage {name!r} needs an out folder")
        init = values.get("init_from")
        if isinstance(init, str) and init.startswith(STAGE_PREFIX):
            parent = init[len(STAGE_PREFIX) :]
            if parent not in folders:
                raise ConfigError(
                    f"{path}: stage {name!r} starts from {parent!r}, which is not an earlier stage"
                )
            values["init_from"] = str(folders[parent])
        try:
            config = TrainConfig.from_dict(values)
        except ConfigError as exc:
            raise ConfigError(f"{path}, stage {name!r}: {exc}") from None
        folders[name] = folder
        recipe = {"file": path.as_posix(), "stage": name, "overrides": list(overrides)}
        result.append(Stage(name, folder, config, recipe))
    return result
