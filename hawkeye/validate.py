"""Check a composed config fully before any job exists: one message per problem.

Four kinds of check, each a small function returning the problems it found (strings naming the
key, the file or the store):

1. **Keys and types** (:func:`check_keys`). The config is compared with its *reference*: the same
   config group options composed without any value override (``model=tcn``, ``+experiment=demo``
   kept, ``train.lr=...`` dropped). A key missing from the reference is refused (``+train.epochz=2``
   is accepted by Hydra, read by nobody); a value whose type differs from the reference's is
   refused naming the key and the expected type. :data:`RULES` tightens this per key (ranges,
   choices, keys that may be null); it is **the one place to declare a key's type and range**:
   every key of the sections in :data:`RULED_SECTIONS` must have a rule there
   (tests/test_validate.py checks it), other sections take their rule from the YAML default.
2. **Compatibility** (:func:`check_compatibility`): model, head, task and cv settings that are
   each valid but do not go together (a real-valued target with a score head, ``coral`` output
   without the ordinal head, heads that do not divide ``d_model``, a test split also pooled for CV,
   a PD4T task's feature set that reads another landmark model than ``task.landmarks``).
3. **The store** (:func:`check_store`): it opens and validates (:func:`hawkeye.store.load_store`),
   holds the splits, the inputs (landmarks, summary features) and targets the task names, was
   prepared with the task's feature set (``task.features``), and has enough subjects for
   ``cv.n_folds``.
4. **Where the job runs** (:func:`check_device`, :func:`check_writable`): ``train.device=cuda``
   exists here for launchers that run here, or is deferred with a note for cluster nodes (a GPU
   must then be requested); output folders are writable and not full.

:func:`check_launch_config` runs all of them for one (point, model) config of a launch; the
launcher raises :class:`ConfigProblems` with every message before it writes or submits anything.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf

from hawkeye.config import CONF_DIR, compose
from hawkeye.families import FAMILIES
from hawkeye.faults import os_error_message
from hawkeye.prepare.tasks import FEATURE_SETS, FINGER_TAPPING, LANDMARK_MODELS, task_spec

if TYPE_CHECKING:
    from hawkeye.launch import Grid, Point

MIN_FREE_BYTES = 100 * 2**20   # an output folder with less free space than this is "full"


class ConfigProblems(ValueError):
    """Every problem found in a launch's configs, one message each."""

    def __init__(self, problems: Sequence[str], notes: Sequence[str] = ()) -> None:
        self.problems, self.notes = list(problems), list(notes)
        super().__init__(f"{len(self.problems)} problem(s) found; nothing was written or "
                         "submitted:\n" + "\n".join(f"  - {p}" for p in self.problems))


# ----------------------------------------------------------------------------------------------
# 1. Keys, types and ranges


@dataclass(frozen=True)
class Rule:
    """What one config key accepts."""

    kinds: tuple[type, ...]              # accepted Python types (int is accepted for float)
    nullable: bool = False               # null is a valid value
    low: float | None = None             # inclusive lower bound
    above: float | None = None           # exclusive lower bound
    high: float | None = None            # inclusive upper bound
    below: float | None = None           # exclusive upper bound
    choices: tuple[Any, ...] | None = None  # the only valid values

    def problem(self, key: str, value: Any) -> str | None:
        """Why ``value`` is not valid for ``key``, or None."""
        if value is None:
            return None if self.nullable else f"{key}: must be set, got null ({self.expected()})"
        if not _is_kind(value, self.kinds):
            return f"{key}: expected {self.expected()}, got {value!r} ({type(value).__name__})"
        if self.choices is not None and value not in self.choices:
            return f"{key}: {value!r} is not one of {list(self.choices)}"
        bounds = ((self.low, lambda v, b: v >= b, ">="), (self.above, lambda v, b: v > b, ">"),
                  (self.high, lambda v, b: v <= b, "<="), (self.below, lambda v, b: v < b, "<"))
        for bound, holds, sign in bounds:
            if bound is not None and not holds(value, bound):
                return f"{key}: must be {sign} {bound:g}, got {value!r}"
        return None

    def expected(self) -> str:
        names = " or ".join(_KIND_NAMES.get(k, k.__name__) for k in self.kinds)
        return f"{names}{' or null' if self.nullable else ''}"


_KIND_NAMES = {int: "int", float: "float", bool: "bool", str: "string", list: "list",
               dict: "mapping"}


def _is_kind(value: Any, kinds: tuple[type, ...]) -> bool:
    if isinstance(value, bool):  # bool is an int in Python; not in a config
        return bool in kinds
    if isinstance(value, int) and float in kinds:
        return True
    return isinstance(value, kinds)


def integer(low: float | None = None, high: float | None = None, nullable: bool = False) -> Rule:
    return Rule((int,), nullable, low=low, high=high)


def number(low: float | None = None, above: float | None = None, high: float | None = None,
           below: float | None = None, nullable: bool = False) -> Rule:
    return Rule((float,), nullable, low=low, above=above, high=high, below=below)


def choice(*values: Any, nullable: bool = False) -> Rule:
    return Rule(tuple({type(v) for v in values}), nullable, choices=values)


FLAG = Rule((bool,))
TEXT = Rule((str,))
PATH = Rule((str,))
LIST = Rule((list,))
MAPPING = Rule((dict,))
SHARE = number(low=0, high=1)          # a fraction 0..1
POSITIVE = number(above=0)


def optional(rule: Rule) -> Rule:
    return Rule(rule.kinds, True, rule.low, rule.above, rule.high, rule.below, rule.choices)


# Sections whose every key must have a rule below (the code reads them key by key). Other
# sections (task, model, head, prepare, launcher) differ per option: their keys come from the
# option's YAML and a rule below, where present, tightens the YAML default's type.
RULED_SECTIONS = ("", "paths", "launch", "collect", "predict", "train", "cv", "export", "logger")

# The schema: dotted key -> rule. Add a new key here (one line) when it is added to conf/.
RULES: dict[str, Rule] = {
    # top level and paths
    "data_root": PATH, "run_dir": optional(PATH), "fold": integer(low=0), "seed": integer(),
    "video": optional(PATH), "paths.store": PATH, "paths.runs": PATH,
    # launch
    "launch.name": optional(TEXT), "launch.wait": FLAG, "launch.force": FLAG,
    "launch.models": optional(LIST), "launch.dry_run": FLAG,
    # collect
    "collect.n_boot": integer(low=1), "collect.alpha": number(above=0, below=1),
    "collect.seed": integer(), "collect.figures": FLAG,
    # predict
    "predict.out": PATH, "predict.hand": choice("l", "r", nullable=True),
    "predict.min_seconds": number(low=0), "predict.task": optional(TEXT),
    "predict.allow_task_mismatch": FLAG, "predict.allow_missing_folds": FLAG,
    "predict.id_column": optional(TEXT),
    # train
    "train.epochs": integer(low=1), "train.batch_size": integer(low=1), "train.lr": POSITIVE,
    "train.weight_decay": number(low=0), "train.lr_schedule": choice("cosine", "constant"),
    "train.grad_clip": optional(POSITIVE), "train.patience": integer(low=1),
    "train.monitor": TEXT, "train.monitor_mode": choice("auto", "min", "max"),
    "train.min_delta": number(low=0),
    "train.balance": choice("none", "weights", "sampling"), "train.amp": FLAG,
    "train.device": choice("auto", "cpu", "cuda"),
    "train.num_threads": integer(low=1, nullable=True),
    "train.eval_batch_size": integer(low=1, nullable=True), "train.log_every": integer(low=1),
    "train.model_overrides": optional(MAPPING),
    # cv
    "cv.n_folds": integer(low=2), "cv.seed": integer(), "cv.val_fraction": number(above=0, below=1),
    # export
    "export.onnx": FLAG, "export.opset": integer(low=7), "export.parity_tol": POSITIVE,
    "export.parity_lengths": LIST, "export.parity_batches": LIST, "export.parity_seed": integer(),
    "export.max_batch": integer(low=1), "export.max_frames": integer(low=1),
    "export.ort_threads": integer(low=0), "export.models": optional(LIST), "export.force": FLAG,
    "export.reuse_graph": FLAG,
    "export.graph_optimization": choice("none", "basic", "extended"),
    "export.quantize": choice("none", "int8", "int8_static"), "export.quantize_tol": number(low=0),
    # logger (each tracker's keys only where logger=[...] names it; conf/logger/)
    "logger.csv": MAPPING, "logger.mlflow.tracking_uri": optional(TEXT),
    "logger.mlflow.experiment": TEXT, "logger.mlflow.artifact_root": optional(PATH),
    "logger.tensorboard.log_dir": optional(PATH),
    # task (both task files)
    "task.sample_rate_hz": optional(POSITIVE), "task.max_seconds": optional(POSITIVE),
    "task.score_kind": choice("ordinal", "nominal"),
    "task.input_features": choice("series", "landmarks", "both"), "task.target": TEXT,
    "task.score_label": TEXT, "task.target_label": optional(TEXT),
    "task.train_splits": LIST, "task.test_split": optional(TEXT),
    "task.anomaly_label": optional(TEXT), "task.anomaly_threshold": choice("percentile", "val_f1"),
    "task.target_windows": choice("all", "normal"), "task.csv": optional(PATH),
    "task.split_layout": choice("annotations_split", "official"),
    "task.on_subject_overlap": choice("error", "warn"),
    "task.landmarks": choice(*LANDMARK_MODELS), "task.features": choice(*FEATURE_SETS),
    # model (each key only where the model has it)
    "model.family": choice(*FAMILIES), "model.hidden": integer(low=1),
    "model.num_layers": integer(low=1), "model.dropout": number(low=0, below=1),
    "model.kernel_size": integer(low=1), "model.d_model": integer(low=1),
    "model.num_heads": integer(low=1), "model.latent_dim": integer(low=1),
    "model.attention_dim": integer(low=1), "model.dim_feedforward": integer(low=1),
    "model.threshold_percentile": number(above=0, below=100),
    "model.output_layer": choice("linear", "coral"),
    "model.objective": choice("regression", "classification", "ordinal"),
    "model.max_iter": integer(low=1), "model.learning_rate": POSITIVE,
    # head
    "head.criterion": choice("mse", "huber"), "head.huber_delta": POSITIVE,
    "head.label_smoothing": number(low=0, below=1), "head.target_std": POSITIVE,
    # prepare
    "prepare.landmark_source": choice("mediapipe", "precomputed"),
    "prepare.workers": integer(low=1, nullable=True), "prepare.flush_every": integer(low=1),
    "prepare.max_missing_share": SHARE, "prepare.shard_index": integer(low=0),
    "prepare.num_shards": integer(low=1), "prepare.submit": optional(FLAG),
    "prepare.video.resize_max_side": integer(low=16, nullable=True),
    "prepare.pose.min_detection_confidence": SHARE, "prepare.pose.min_tracking_confidence": SHARE,
    "prepare.pose.min_oscillation_amplitude": number(low=0),
    "prepare.pose.min_oscillation_cycles": integer(low=1),
    # launcher (resource values may be null: "leave to the cluster")
    "launcher.max_parallel": integer(low=1, nullable=True),
    "launcher.max_array_size": integer(low=1, nullable=True),
    "launcher.parameters.additional_parameters": MAPPING,
}
# Sections that hold submitit parameters: null removes one, and any parameter the executor class
# accepts may be added (``+launcher.parameters.exclude=node7``, ``+prepare.jobs.shard.mem=8GB``).
EXECUTOR_SECTIONS = ("launcher.parameters", "launcher.collector", "prepare.jobs.shard",
                     "prepare.jobs.merge")


def leaves(tree: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """``(dotted key, value)`` of every leaf of a plain nested dict (lists are leaves)."""
    for key, value in tree.items():
        dotted = f"{prefix}{key}"
        rule = RULES.get(dotted)
        if isinstance(value, dict) and value and (rule is None or dict not in rule.kinds):
            yield from leaves(value, f"{dotted}.")
        else:
            yield dotted, value


def group_overrides(overrides: Sequence[str],
                    conf_dir: str | os.PathLike[str] = CONF_DIR) -> list[str]:
    """The overrides that choose config group options (``model=tcn``, ``+experiment=demo``)."""
    groups = {p.name for p in Path(conf_dir).iterdir() if p.is_dir()}
    parsed = OverridesParser.create().parse_overrides(list(overrides))
    return [o.input_line for o in parsed if o.key_or_group in groups or
            o.key_or_group.startswith("hydra/")]


def _lookup(tree: Mapping[str, Any], dotted: str) -> tuple[bool, Any]:
    node: Any = tree
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return False, None
        node = node[part]
    return True, node


def _inferred_rule(dotted: str, reference: Any) -> Rule | None:
    """A rule from the YAML default's type (None when the default is null: any value)."""
    if reference is None:
        return None
    kind = float if isinstance(reference, float) else type(reference)
    nullable = dotted.startswith(EXECUTOR_SECTIONS)
    return Rule((kind,), nullable)


def check_keys(cfg: Mapping[str, Any], reference: Mapping[str, Any],
               executor_keys: set[str] | None = None) -> list[str]:
    """Unknown keys and wrong types/ranges of ``cfg`` against its ``reference`` (plain dicts).

    ``executor_keys``: the parameters the launcher's executor class accepts (None: only those
    in the reference).
    """
    problems: list[str] = []
    for dotted, value in leaves(cfg):
        known, default = _lookup(reference, dotted)
        section = dotted.rpartition(".")[0]
        if not known and section in EXECUTOR_SECTIONS and executor_keys is not None:
            known = dotted.rpartition(".")[2] in executor_keys
        if not known:
            problems.append(_unknown_key(dotted, reference))
            continue
        rule = RULES.get(dotted) or _inferred_rule(dotted, default)
        found = rule.problem(dotted, value) if rule is not None else None
        if found:
            problems.append(found)
    return problems


def _unknown_key(dotted: str, reference: Mapping[str, Any]) -> str:
    parent = dotted.rpartition(".")[0]
    _, node = _lookup(reference, parent) if parent else (True, reference)
    known = sorted(node) if isinstance(node, Mapping) else []
    where = f"; {parent or 'the top level'} has: {', '.join(map(str, known))}" if known else ""
    return f"{dotted}: no such key, nothing reads it (a typo?){where}"


def check_model_overrides(cfg: Mapping[str, Any], reference_model: Mapping[str, Any]) -> list[str]:
    """``train.model_overrides.<this model>`` may only set keys the model has."""
    extra = (cfg["train"].get("model_overrides") or {}).get(cfg["model"]["name"]) or {}
    return [f"train.model_overrides.{cfg['model']['name']}.{key}: model "
            f"{cfg['model']['name']} has no key {key!r}" for key in extra
            if key not in reference_model]


# ----------------------------------------------------------------------------------------------
# 2. Compatibility


def check_compatibility(cfg: Mapping[str, Any]) -> list[str]:
    """Settings that are valid each on their own but not together."""
    model, head, task = cfg["model"], cfg["head"], cfg["task"]
    problems = []
    continuous = task["target"] != "score"
    family = FAMILIES.get(model["family"])  # None: an unknown family, reported by its rule
    supervised = family is not None and family.uses_head
    if supervised and continuous != (head["name"] == "continuous"):
        needs = "head=continuous" if continuous else "a score head (regression | classification " \
                                                      "| ordinal)"
        problems.append(f"task.target={task['target']} needs {needs}, got head={head['name']}")
    wanted_layer = head.get("output_layer", "linear")
    if "output_layer" in model and model["output_layer"] == "coral" != wanted_layer:
        problems.append(f"model.output_layer=coral needs head=ordinal (head={head['name']})")
    if "d_model" in model and "num_heads" in model and model["num_heads"] >= 1 \
            and model["d_model"] % model["num_heads"]:
        problems.append(f"model.num_heads={model['num_heads']} must divide "
                        f"model.d_model={model['d_model']}")
    if model.get("_target_", "").endswith("ConvLSTM") and model["kernel_size"] % 2 == 0:
        problems.append(f"model.kernel_size={model['kernel_size']} must be odd (same-length "
                        "convolutions)")
    if task.get("test_split") is not None and task["test_split"] in task["train_splits"]:
        problems.append(f"task.test_split={task['test_split']} is also in task.train_splits="
                        f"{task['train_splits']}: the test split must stay held out")
    return problems + check_task_spec(task)


def check_task_spec(task: Mapping[str, Any]) -> list[str]:
    """A PD4T task's feature set reads the landmarks of its landmark model (other tasks have
    neither key; an unknown name is the RULES' choice problem, not repeated here)."""
    if task.get("landmarks") not in LANDMARK_MODELS or task.get("features") not in FEATURE_SETS:
        return []
    try:
        task_spec(task["landmarks"], task["features"])
    except ValueError as error:
        return [str(error)]
    return []


def check_folds(n_folds: int, folds: Sequence[int]) -> list[str]:
    """The folds asked for (``fold=...``) exist."""
    return [f"fold={k} is outside 0..{n_folds - 1} (cv.n_folds={n_folds})"
            for k in folds if not 0 <= k < n_folds]


# ----------------------------------------------------------------------------------------------
# 3. The store


@dataclass(frozen=True)
class StoreFacts:
    """What the checks need to know about a store (read once per store path)."""

    subjects_by_split: dict[str, set[str]]
    has_landmarks: bool
    n_summary: int
    targets: tuple[str, ...]
    features: str | None = None  # the feature set it was prepared with (None: not prepared)


def store_facts(path: str | os.PathLike[str]) -> StoreFacts:
    """Open and fully validate the store (raises :class:`hawkeye.store.StoreError`)."""
    from hawkeye.store import load_store  # h5py: only when a store is checked

    data = load_store(path)
    by_split: dict[str, set[str]] = {}
    for split, subject in zip(data.splits, data.subjects, strict=True):
        by_split.setdefault(str(split), set()).add(str(subject))
    recorded = data.attrs.get("prepare")  # written by hawkeye.prepare (no "task": before it)
    features = (recorded.get("task") or FINGER_TAPPING)["features"] \
        if isinstance(recorded, Mapping) else None
    return StoreFacts(by_split, data.landmarks is not None, len(data.summary_names),
                      tuple(sorted(data.targets)), features)


def check_store(cfg: Mapping[str, Any], facts: StoreFacts) -> list[str]:
    """The store has what this config's folds need."""
    task, store = cfg["task"], cfg["paths"]["store"]
    splits = [s for s in task["train_splits"] if s in facts.subjects_by_split]
    if not splits:
        return [f"{store}: has none of task.train_splits={task['train_splits']} "
                f"(its splits: {sorted(facts.subjects_by_split)})"]
    problems = []
    subjects = set().union(*(facts.subjects_by_split[s] for s in splits))
    if cfg["cv"]["n_folds"] > len(subjects):
        problems.append(f"cv.n_folds={cfg['cv']['n_folds']} but {store} has only "
                        f"{len(subjects)} subjects in {splits}: every fold needs a subject "
                        f"(use cv.n_folds<={len(subjects)})")
    if task["input_features"] in ("landmarks", "both") and not facts.has_landmarks:
        problems.append(f"task.input_features={task['input_features']} but {store} has no "
                        "landmarks (prepare with prepare.keep_landmarks=true, or "
                        "task.input_features=series)")
    named = {"task.target": task["target"] if task["target"] != "score" else None,
             "task.anomaly_label": task.get("anomaly_label")
             if getattr(FAMILIES.get(cfg["model"]["family"]), "learns_anomalies", False)
             else None}
    for key, target in named.items():
        if target is not None and target not in facts.targets:
            problems.append(f"{key}={target} but {store} has no target {target!r} "
                            f"(its targets: {list(facts.targets) or 'none'})")
    if "features" in task and facts.features not in (None, task["features"]):
        problems.append(f"task.features={task['features']} but {store} was prepared with the "
                        f"{facts.features} features: prepare a store for task={task['name']} "
                        f"(make prepare TASK={task['name']}) or train with the store's own task")
    if not getattr(FAMILIES.get(cfg["model"]["family"]), "needs_sequences", True) \
            and facts.n_summary == 0:
        problems.append(f"model={cfg['model']['name']} needs summary features; {store} has none")
    return problems


# ----------------------------------------------------------------------------------------------
# 4. Where the job runs


def check_device(cfg: Mapping[str, Any], backend_name: str,
                 cuda_here: Callable[[], bool]) -> tuple[list[str], list[str]]:
    """``train.device=cuda``: checked here when jobs run here; on a cluster node, deferred with a
    note, but a GPU must be requested. Returns ``(problems, notes)``."""
    if cfg["train"]["device"] != "cuda":
        return [], []
    params = cfg["launcher"]["parameters"]
    if backend_name == "slurm":
        asked = str(params.get("gres") or "") + str(params.get("gpus_per_node") or "") + str(
            (params.get("additional_parameters") or {}).get("gpus") or "")
        if "gpu" not in asked and not asked.strip("0"):
            return [f"train.device=cuda but launcher={cfg['launcher']['name']} requests no GPU "
                    "(set launcher.parameters.gres=gpu:1, or launcher=slurm_v100)"], []
        return [], ["train.device=cuda: checked on the compute node when the job starts "
                    "(cannot be checked from here)"]
    if backend_name == "local" and not params.get("gpus_per_node"):
        return ["train.device=cuda but launcher.parameters.gpus_per_node=0 hides every GPU "
                "from the jobs (set it to 1, or train.device=auto)"], []
    if not cuda_here():
        return ["train.device=cuda but no CUDA device is visible on this machine "
                "(use train.device=auto or cpu)"], []
    return [], []


def nearest_existing(path: Path) -> Path:
    """``path`` or its closest ancestor that exists."""
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_writable(folder: str | os.PathLike[str], what: str,
                   min_free: int = MIN_FREE_BYTES) -> list[str]:
    """``folder`` (or where it will be created) is a writable folder with free space left.

    Writes and removes one temporary file (permissions alone miss read-only mounts); creates
    nothing that stays.
    """
    base = nearest_existing(Path(folder))
    if not base.is_dir():
        return [f"{what} {folder}: {base} is a file, not a folder"]
    try:
        with tempfile.NamedTemporaryFile(dir=base, prefix=".hawkeye-write-check-"):
            pass
    except OSError as error:
        return [f"{what} {folder}: {os_error_message(error, f'in {base}')}"]
    free = shutil.disk_usage(base).free
    if free < min_free:
        return [f"{what} {folder}: only {free / 2**20:.0f} MiB free in {base} (at least "
                f"{min_free / 2**20:.0f} MiB needed)"]
    return []


# ----------------------------------------------------------------------------------------------
# All checks of a launch


def executor_keys(launcher: Mapping[str, Any]) -> set[str] | None:
    """The parameters the launcher's executor class accepts (None: not known)."""
    import hydra.utils

    valid = getattr(hydra.utils.get_class(launcher["executor"]["_target_"]),
                    "_valid_parameters", None)
    return set(valid()) if valid is not None else None


class LaunchChecker:
    """Checks every (point, model) config of a launch, reading each store and reference once."""

    def __init__(self, composer: Callable[[Sequence[str]], DictConfig] = compose,
                 cuda_here: Callable[[], bool] | None = None) -> None:
        self.composer = composer
        self.cuda_here = cuda_here or _cuda_available
        self._references: dict[tuple[str, ...], dict[str, Any]] = {}
        self._stores: dict[str, StoreFacts | str] = {}
        self.problems: list[str] = []
        self.notes: list[str] = []

    def reference(self, overrides: Sequence[str]) -> dict[str, Any]:
        key = tuple(group_overrides(overrides))
        if key not in self._references:
            self._references[key] = OmegaConf.to_container(self.composer(key), resolve=True)
        return self._references[key]

    def store(self, path: str) -> StoreFacts | str:
        """The store's facts, or the message why it cannot be used."""
        if path not in self._stores:
            try:
                self._stores[path] = store_facts(path)
            except (OSError, ValueError) as error:  # StoreError is a ValueError
                self._stores[path] = f"paths.store: {error}"
        return self._stores[path]

    def check(self, cfg: DictConfig, overrides: Sequence[str], label: str, backend_name: str,
              folds: Sequence[int]) -> None:
        """Add the problems of one (point, model) config composed from ``overrides``; each
        message starts with ``[label]`` (the model and sweep point)."""
        plain = OmegaConf.to_container(cfg, resolve=True)
        reference = self.reference(overrides)
        found = check_keys(plain, reference, executor_keys(plain["launcher"]))
        for cross_check in (lambda: check_model_overrides(plain, reference["model"]),
                            lambda: check_compatibility(plain),
                            lambda: check_folds(plain["cv"]["n_folds"], folds),
                            lambda: self.check_store(plain),
                            lambda: self.check_device(plain, backend_name)):
            try:
                found += cross_check()
            except (TypeError, KeyError, AttributeError):  # compares a value of the wrong type
                if not found:  # or a key that is missing: both are reported already
                    raise
        where = f"[{label}] "
        self.problems += [f"{where}{p}" for p in found if f"{where}{p}" not in self.problems]

    def check_store(self, cfg: Mapping[str, Any]) -> list[str]:
        facts = self.store(str(cfg["paths"]["store"]))
        return [facts] if isinstance(facts, str) else check_store(cfg, facts)

    def check_device(self, cfg: Mapping[str, Any], backend_name: str) -> list[str]:
        problems, notes = check_device(cfg, backend_name, self.cuda_here)
        self.notes += [n for n in notes if n not in self.notes]
        return problems

    def check_grid(self, grid: Grid, points: Sequence[Point]) -> None:
        """Every (point, model) config of a launch and its output folder; raises
        :class:`ConfigProblems` with every problem found."""
        from hawkeye.cluster import launcher_backend

        for point in points:
            for model, cfg in point.configs.items():
                label = " ".join([f"model={model}", *point.overrides])
                self.check(cfg, [*grid.common, *point.overrides, f"model={model}"], label,
                           launcher_backend(cfg.launcher).name, grid.folds or ())
        base = points[0].configs[grid.models[0]]
        runs = base.run_dir if base.run_dir is not None else base.paths.runs
        self.problems += check_writable(runs, "paths.runs")
        if self.problems:
            raise ConfigProblems(self.problems, self.notes)


def _cuda_available() -> bool:
    import torch  # only when train.device=cuda must be checked on this machine

    return bool(torch.cuda.is_available())
