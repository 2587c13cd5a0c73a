"""The run configuration: one typed dataclass is the schema, YAML files and CLI flags override it.

Every field carries its help text (shown by ``gat-pyg train --help``) and, where it has one, its
set of allowed values. Fields that only some models read (attention heads) name those models, and
fields that only some datasets read (the Planetoid split, graphs per batch of the inductive PPI)
name those datasets; a config for another model or dataset may not set them, and its resolved YAML
leaves them out, so every key a file holds is a key the run uses.

Where a value comes from: a run's settings are the YAML file of its (dataset, model),
``configs/<dataset>_<model>.yaml`` (the one source of each pair's paper settings; the CLI picks
it when no ``--config`` is given, see :func:`resolve_config`), with overrides on top; the
dataclass defaults below fill only the keys a file leaves out (and equal ``configs/cora_gat.yaml``
for the keys it sets: ``TrainConfig()`` is the paper's GAT on Cora). Error messages name the key
and where its value came from (the file, or the command line), and what to do.

This module imports no torch (``gat-pyg --help`` builds its options from it).
"""
import dataclasses
import difflib
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import yaml

import gat_pyg
from gat_pyg.data.names import DATASETS, SPLITS

MODEL_NAMES = ('gat', 'gatv2', 'gcn', 'mlp')
ATTENTION_MODELS = ('gat', 'gatv2')
EARLY_STOPPING = ('gat', 'gcn', 'none')
INDUCTIVE_DATASETS = ('ppi',)
"""Datasets of many graphs, trained whole graph by graph (:mod:`gat_pyg.train.inductive`)."""
PLANETOID_DATASETS = tuple(DATASETS)
PRECISIONS = ('32', 'bf16-mixed', '16-mixed')
"""Lightning's precision names (:mod:`gat_pyg.train.device`)."""
BACKENDS = ('auto', 'gloo', 'nccl')
DEVICE_FORM = re.compile(r'auto|cpu|cuda(:[0-9]+)?')
"""The device names a config may hold; whether the machine has them is checked at run time."""
COMMAND_LINE = 'command line'
"""The origin the CLI gives its ``--key value`` overrides in messages."""


def _field(default: Any, help: str, choices: Optional[Sequence[str]] = None,
           models: Optional[Sequence[str]] = None,
           datasets: Optional[Sequence[str]] = None) -> Any:
    return field(default=default, metadata={'help': help, 'choices': choices, 'models': models,
                                            'datasets': datasets})


@dataclass
class TrainConfig:
    """One training run: data, model, optimiser and stopping rule. Defaults: GAT on Cora as in
    the paper. Construction checks every value's type and range (``TypeError`` / ``ValueError``
    naming the field)."""

    dataset: str = _field('cora', 'Dataset: a Planetoid graph, or ppi (inductive, many graphs).',
                          choices=PLANETOID_DATASETS + INDUCTIVE_DATASETS)
    split: str = _field('public', 'Node split: public (20 per class / 500 / 1000), full, or '
                        'random (drawn with seed).', choices=SPLITS, datasets=PLANETOID_DATASETS)
    model: str = _field('gat', 'Model architecture.', choices=MODEL_NAMES)
    hidden_channels: int = _field(
        8, 'Hidden features: per head for gat / gatv2 (a hidden layer is heads x '
           'hidden_channels wide; PyG\'s torch_geometric.nn.models.GAT reads it as the total '
           'width instead), the layer width for gcn / mlp.')
    num_layers: int = _field(2, 'Number of graph layers.')
    heads: int = _field(8, 'Attention heads of each hidden layer (concatenated).',
                        models=ATTENTION_MODELS)
    out_heads: int = _field(1, 'Attention heads of the output layer (averaged).',
                            models=ATTENTION_MODELS)
    dropout: float = _field(0.6, "Dropout on every layer's input features.")
    attn_dropout: float = _field(0.6, 'Dropout on the attention coefficients.',
                                 models=ATTENTION_MODELS)
    message_dropout: float = _field(
        0.6, 'Dropout on the projected features each layer sums (the official GAT code drops '
             'them with its input dropout rate; PyG does not).', models=ATTENTION_MODELS)
    bias: bool = _field(True, 'Learn an additive bias in every layer.')
    residual: bool = _field(False, 'Linear skip connection in every attention layer (the GAT '
                            "paper's PPI model).", models=ATTENTION_MODELS)
    graphs_per_batch: int = _field(2, 'Whole graphs per mini-batch of an inductive dataset '
                                   '(paper, PPI: 2).', datasets=INDUCTIVE_DATASETS)
    lr: float = _field(0.005, 'Adam learning rate.')
    weight_decay: float = _field(5e-4, 'L2 penalty (Adam weight_decay).')
    weight_decay_first_layer_only: bool = _field(
        False, 'Apply weight_decay to the first layer only (as Kipf & Welling\'s GCN).')
    epochs: int = _field(100_000, 'Maximum number of epochs (the stopping rule usually ends '
                         'the run first).')
    early_stopping: str = _field(
        'gat', "Stopping rule: gat (official GAT: patience on val acc or loss, test the "
        "checkpoint with the best val acc and loss), gcn (Kipf: stop when val loss plus the L2 "
        "term exceeds its mean over the previous `patience` epochs, test the last model), none "
        "(run all epochs, test the last model).", choices=EARLY_STOPPING)
    patience: int = _field(100, 'gat rule: epochs without improvement; gcn rule: averaging '
                           'window.')
    seed: int = _field(0, 'Seed of initialisation, dropout and the random split.')
    sparse_features: bool = _field(True, 'Keep node features as a torch.sparse tensor (the same '
                                   'model, much faster on bag-of-words features; dropout masks, '
                                   'and so a seed\'s run, differ from dense).',
                                   datasets=PLANETOID_DATASETS)
    batch_size: Optional[int] = _field(
        None, 'Mini-batch training: target (training) nodes per batch, sampled with '
        "PyG's NeighborLoader; null = full-batch training.", datasets=PLANETOID_DATASETS)
    num_neighbors: Optional[List[int]] = _field(
        None, 'Mini-batch training: neighbours sampled per node, one count per layer, -1 = all '
        "(as NeighborLoader: the first count is for the batch's target nodes, the next for "
        'their sampled neighbours, ...); null = all at every hop. Needs batch_size.',
        datasets=PLANETOID_DATASETS)
    inference_batch_size: Optional[int] = _field(
        None, 'Layer-wise evaluation: validation and test compute each layer for all nodes in '
        'batches of this many target nodes over their full in-neighbourhood '
        '(BaseModel.inference), so no whole-graph activation of a layer is needed at once; '
        'the same numbers as one full-graph forward pass. null = one full-graph forward pass.',
        datasets=PLANETOID_DATASETS)
    device: str = _field(
        'auto', 'Where to train and evaluate: auto (the GPU when CUDA is available, else the '
        'CPU), cpu, cuda or cuda:N. Under torchrun each process uses cuda:LOCAL_RANK (auto: the '
        'CPU when the machine has fewer GPUs than processes).')
    precision: str = _field(
        '32', "Arithmetic of the forward passes (Lightning's names): 32 = float32; bf16-mixed "
        '/ 16-mixed = autocast to bfloat16 / float16 with float32 parameters (16-mixed also '
        'scales the loss).', choices=PRECISIONS)
    deterministic: bool = _field(
        False, 'Call torch.use_deterministic_algorithms(True) for the run: an operation '
        'without a deterministic implementation then raises instead of varying.')
    backend: str = _field(
        'auto', 'torch.distributed backend under torchrun: auto (nccl on GPUs, gloo on the '
        'CPU), gloo or nccl.', choices=BACKENDS)

    def __post_init__(self) -> None:
        if isinstance(self.precision, int) and not isinstance(self.precision, bool):
            self.precision = str(self.precision)      # YAML reads `precision: 32` as an int
        for f in dataclasses.fields(self):
            _check_type(f.name, getattr(self, f.name), f.type)
            if f.type is float:
                setattr(self, f.name, float(getattr(self, f.name)))
            choices = f.metadata['choices']
            if choices is not None:
                # Names are case-insensitive, as in load_planetoid('CORA'); stored lower-case.
                setattr(self, f.name, getattr(self, f.name).lower())
                _check_choice(f.name, getattr(self, f.name), choices)
        for name in ('hidden_channels', 'num_layers', 'heads', 'out_heads', 'epochs',
                     'patience', 'graphs_per_batch'):
            if getattr(self, name) < 1:
                raise ValueError(f"config key '{name}': must be >= 1, got {getattr(self, name)}")
        for name in ('dropout', 'attn_dropout', 'message_dropout'):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"config key '{name}': must be in [0, 1), "
                                 f'got {getattr(self, name)}')
        if self.lr <= 0.0:
            raise ValueError(f"config key 'lr': must be > 0, got {self.lr}")
        if self.weight_decay < 0.0:
            raise ValueError(f"config key 'weight_decay': must be >= 0, got {self.weight_decay}")
        if self.seed < 0:
            raise ValueError(f"config key 'seed': must be >= 0, got {self.seed}")
        self._check_minibatch()
        self._check_devices()

    def _check_minibatch(self) -> None:
        if self.batch_size is not None and self.batch_size < 1:
            raise ValueError(f"config key 'batch_size': must be >= 1 (or null for full-batch "
                             f'training), got {self.batch_size}')
        if self.num_neighbors is None:
            return
        if self.batch_size is None:
            raise ValueError("config key 'num_neighbors': only mini-batch training samples "
                             'neighbours; set batch_size too (or remove num_neighbors)')
        if len(self.num_neighbors) != self.num_layers:
            raise ValueError(f"config key 'num_neighbors': expected one count per layer "
                             f'(num_layers={self.num_layers}), got {len(self.num_neighbors)}: '
                             f'{self.num_neighbors}')
        if any(n == 0 or n < -1 for n in self.num_neighbors):
            raise ValueError(f"config key 'num_neighbors': each count must be >= 1, or -1 for "
                             f'all neighbours, got {self.num_neighbors}')

    def _check_devices(self) -> None:
        # Only the form: whether this machine has the device is resolve_device's question.
        if not DEVICE_FORM.fullmatch(self.device):
            raise ValueError(f"config key 'device': expected auto, cpu, cuda or cuda:N (N a GPU "
                             f'index), got {self.device!r}')
        if self.inference_batch_size is not None and self.inference_batch_size < 1:
            raise ValueError(f"config key 'inference_batch_size': must be >= 1 (or null for "
                             f'one full-graph forward pass), got {self.inference_batch_size}')

    @classmethod
    def from_dict(cls, values: Mapping[str, Any],
                  origins: Optional[Mapping[str, str]] = None) -> 'TrainConfig':
        """A config from a mapping of field names to typed values (a parsed YAML file).

        The dataset and model are checked first (known names, any case), then whether every
        key is one the model and dataset use, then each value.

        Args:
            values: ``{key: value}``.
            origins: ``{key: where its value came from}`` (a file name, ``'command line'``);
                an error about a key names its origin, and a key that another origin's model or
                dataset does not use is reported as such. (default: none named)

        Raises:
            ValueError: an unknown key, a key the chosen model or dataset does not use, or a
                bad value.
            TypeError: a value of the wrong type.
        """
        origins = dict(origins or {})
        values = _check_names(values, origins)
        _check_keys_apply(values, origins)
        try:
            return cls(**values)
        except (TypeError, ValueError) as err:
            key = getattr(err, 'key', None) or _key_named_in(str(err))
            raise type(err)(_at(origins.get(key), str(err))) from None

    def to_dict(self) -> Dict[str, Any]:
        """The fields this config's model uses, in declaration order (``from_dict`` inverts it)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if applies(f, self.model, self.dataset)}

    def to_yaml(self) -> str:
        """The resolved config as YAML."""
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


def applies(f: dataclasses.Field, model: str, dataset: Optional[str] = None) -> bool:
    """Whether config field ``f`` is read when training ``model`` (on ``dataset``, if given)."""
    models = f.metadata['models']
    datasets = f.metadata.get('datasets')
    return ((models is None or model in models)
            and (dataset is None or datasets is None or dataset in datasets))


def _fields() -> Dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(TrainConfig)}


def _check_names(values: Mapping[str, Any], origins: Mapping[str, str]) -> Dict[str, Any]:
    """Refuse unknown keys, check the dataset and model names (before anything that depends on
    them) and return ``values`` with those names lower-case."""
    known = _fields()
    for key in values:
        if key not in known:
            raise ValueError(_at(origins.get(key), f'unknown config key {key!r}'
                                 f'{_did_you_mean(key, known)}; known keys: '
                                 f"{', '.join(known)}"))
    values = dict(values)
    for key in ('dataset', 'model'):
        if key in values:
            try:
                _check_type(key, values[key], known[key].type)
                values[key] = values[key].lower()
                _check_choice(key, values[key], known[key].metadata['choices'])
            except (TypeError, ValueError) as err:
                raise type(err)(_at(origins.get(key), str(err))) from None
    return values


def _unused_keys(keys, decider: str, chosen: str) -> List[str]:
    """The keys among ``keys`` that a run whose ``decider`` ('model' or 'dataset') is
    ``chosen`` does not read."""
    meta = f'{decider}s'
    known = _fields()
    return [key for key in keys if known[key].metadata.get(meta) is not None
            and chosen not in known[key].metadata[meta]]


def _check_keys_apply(values: Mapping[str, Any], origins: Mapping[str, str]) -> None:
    """Refuse a key that the config's model or dataset does not read, naming where the key and
    the model (dataset) came from."""
    known = _fields()
    for decider in ('dataset', 'model'):
        chosen = values.get(decider, known[decider].default)
        unused = _unused_keys(values, decider, chosen)
        if not unused:
            continue
        key, decided_at = unused[0], origins.get(decider)
        where = f' ({decider} {chosen!r} from {_describe(decided_at)})' \
            if decided_at not in (None, origins.get(key)) else ''
        remove = f'remove it from {_describe(origins[key])}' if origins.get(key) \
            else 'remove it'
        raise ValueError(_at(origins.get(key), f'config key {key!r} is only used by '
                             f"{decider}s {', '.join(known[key].metadata[f'{decider}s'])}, "
                             f'not by {chosen!r}{where}; {remove}'))


def _check_file_fits_overrides(path: Path, file_values: Mapping[str, Any],
                               values: Mapping[str, Any], overrides_origin: str) -> None:
    """A file whose model (or dataset) is overridden must not set keys that the new one does
    not use: the file is written for another model, and its other settings (learning rate,
    dropout, stopping rule) would be that model's too. Refused, pointing at the right file."""
    for decider in ('dataset', 'model'):
        written_for = str(file_values.get(decider, '')).lower()
        chosen = values.get(decider)
        if not written_for or chosen == written_for:
            continue
        unused = _unused_keys([k for k in file_values if k != decider], decider, chosen)
        if not unused:
            continue
        pair = dict(dataset=values.get('dataset', file_values.get('dataset', 'cora')),
                    model=values.get('model', file_values.get('model', 'gat')))
        better = config_path(pair['dataset'], pair['model'], path.parent)
        instead = f'use {better}' if better.is_file() else \
            f"use a config written for {decider} {chosen!r}"
        raise ValueError(
            f'{path} is written for {decider} {written_for!r}: it sets {", ".join(unused)}, '
            f'which {decider} {chosen!r} (from {_describe(overrides_origin)}) does not use; '
            f'{instead} instead of overriding {decider}')


def load_config(path: Union[str, Path], overrides: Optional[Mapping[str, Any]] = None,
                *, overrides_origin: str = 'overrides') -> TrainConfig:
    """Read a YAML config file and apply ``overrides`` (already typed, e.g. from
    :func:`parse_override`) on top of it.

    Args:
        path: The YAML file, a mapping of config keys to values.
        overrides: ``{key: value}`` replacing the file's values.
        overrides_origin (str): How messages name the overrides' origin (the CLI:
            ``'command line'``). (default: ``'overrides'``)

    Raises:
        FileNotFoundError: no such file (the message lists the files beside it).
        ValueError / TypeError: a YAML syntax error (with its line and column), a duplicate
            key, or as :meth:`TrainConfig.from_dict`; each message names the key and whether
            its value came from the file or the overrides.
    """
    path = Path(path)
    file_values = read_config_file(path)
    values = dict(file_values)
    origins = {key: str(path) for key in values}
    for key, value in (overrides or {}).items():
        values[key] = value
        origins[key] = overrides_origin
    values = _check_names(values, origins)
    _check_file_fits_overrides(path, file_values, values, overrides_origin)
    return TrainConfig.from_dict(values, origins)


def read_config_file(path: Union[str, Path]) -> Dict[str, Any]:
    """The mapping a YAML config file holds (not yet checked against the schema).

    Raises:
        FileNotFoundError: no such file.
        ValueError: not YAML, not a mapping, or a key given twice.
    """
    path = Path(path)
    if not path.is_file():
        siblings = sorted(p.name for p in path.parent.glob('*.yaml')) if path.parent.is_dir() \
            else []
        close = difflib.get_close_matches(path.stem, [Path(name).stem for name in siblings],
                                          n=1, cutoff=0.6)
        hint = f' (did you mean {path.parent / close[0]}.yaml?)' if close else ''
        listing = f'; {path.parent} holds {", ".join(siblings)}' if siblings and not hint else ''
        raise FileNotFoundError(f'config file {path} does not exist{hint}{listing}')
    try:
        with open(path) as f:
            values = yaml.load(f, Loader=_ConfigLoader)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f', line {mark.line + 1}, column {mark.column + 1}' if mark else ''
        problem = '; '.join(filter(None, [err.context, err.problem]))
        raise ValueError(f'{path}{where}: not valid YAML: {problem}') from None
    except yaml.YAMLError as err:
        raise ValueError(f'{path}: not valid YAML: {err}') from None
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise ValueError(f'{path}: a config file must be a YAML mapping of keys to values, '
                         f'got {type(values).__name__}')
    return values


def default_config_dir() -> Path:
    """``configs/`` of the source checkout this package runs from, else ``./configs``."""
    beside_package = Path(gat_pyg.__file__).resolve().parent.parent / 'configs'
    return beside_package if beside_package.is_dir() else Path('configs')


def config_path(dataset: str, model: str, config_dir: Optional[Union[str, Path]] = None
                ) -> Path:
    """``configs/<dataset>_<model>.yaml``: the file holding that pair's settings (names in any
    case; ``config_dir`` defaults to :func:`default_config_dir`)."""
    folder = Path(config_dir) if config_dir is not None else default_config_dir()
    return folder / f'{str(dataset).lower()}_{str(model).lower()}.yaml'


def resolve_config(path: Optional[Union[str, Path]], overrides: Optional[Mapping[str, Any]] = None,
                   *, config_dir: Optional[Union[str, Path]] = None,
                   overrides_origin: str = 'overrides') -> TrainConfig:
    """The config of a run: ``path`` with ``overrides`` on top, or, without ``path``, the file
    of the (dataset, model) that ``overrides`` name (defaults: cora, gat), so that a run
    without a config file trains that pair's paper settings, never another model's.

    Raises:
        FileNotFoundError: no file for that pair (the message says which file was looked for).
        ValueError / TypeError: as :func:`load_config`.
    """
    overrides = dict(overrides or {})
    if path is not None:
        return load_config(path, overrides, overrides_origin=overrides_origin)
    defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
    pair = {}
    for key in ('dataset', 'model'):
        value = overrides.get(key, defaults[key])
        try:
            _check_type(key, value, str)
            _check_choice(key, value.lower(), _field_choices(key))
        except (TypeError, ValueError) as err:
            raise type(err)(_at(overrides_origin, str(err))) from None
        pair[key] = value.lower()
    file = config_path(pair['dataset'], pair['model'], config_dir)
    if not file.is_file():
        raise FileNotFoundError(
            f"no config file for model {pair['model']!r} on dataset {pair['dataset']!r}: "
            f'{file} does not exist; pass a config file (--config FILE) or the folder that '
            'holds <dataset>_<model>.yaml (--config-dir)')
    return load_config(file, overrides, overrides_origin=overrides_origin)


def _field_choices(name: str) -> Sequence[str]:
    return next(f for f in dataclasses.fields(TrainConfig) if f.name == name).metadata['choices']


def _check_choice(name: str, value: str, choices: Sequence[str]) -> None:
    if value not in choices:
        raise ValueError(f"config key '{name}': unknown {name} {value!r}"
                         f'{_did_you_mean(value, choices)}; expected one of '
                         f"{', '.join(choices)} (any case)")


def _did_you_mean(word: str, candidates: Sequence[str]) -> str:
    close = difflib.get_close_matches(str(word).lower(), list(candidates), n=1, cutoff=0.6)
    return f' (did you mean {close[0]!r}?)' if close else ''


def _at(origin: Optional[str], message: str) -> str:
    return f'{origin}: {message}' if origin else message


def _describe(origin: str) -> str:
    """An origin inside a sentence: a file as its path, anything else as 'the <origin>'."""
    return origin if origin.endswith(('.yaml', '.yml')) or '/' in origin else f'the {origin}'


def _key_named_in(message: str) -> Optional[str]:
    match = re.search(r"config key '(\w+)'", message)
    return match.group(1) if match else None


def config_fields() -> Tuple[dataclasses.Field, ...]:
    """The fields of :class:`TrainConfig` (for building CLI options)."""
    return dataclasses.fields(TrainConfig)


def parse_override(key: str, text: Union[str, Sequence[str]]) -> Any:
    """Convert the command-line text of ``--key text`` to the field's type.

    A list field (``num_neighbors``) takes the words of ``--key 10 10`` as a sequence (or one
    string of words); an optional field takes ``none`` / ``null`` for ``None``.

    Raises:
        ValueError: an unknown key or a text that is not a value of the field's type.
    """
    known = {f.name: f for f in dataclasses.fields(TrainConfig)}
    if key not in known:
        raise ValueError(f'unknown config key {key!r}')
    kind = known[key].type
    words = text.split() if isinstance(text, str) else list(text)
    inner, optional = _unwrap_optional(kind)
    if optional and len(words) == 1 and words[0].strip().lower() in ('none', 'null'):
        return None
    try:
        if typing.get_origin(inner) is list:
            (item,) = typing.get_args(inner)
            return [_parse_scalar(item, word) for word in words]
        if len(words) != 1 and not isinstance(text, str):
            raise ValueError
        return _parse_scalar(inner, text if isinstance(text, str) else words[0])
    except ValueError:
        shown = text if isinstance(text, str) else ' '.join(words)
        raise ValueError(f'config key {key!r}: expected {type_name(kind)}, '
                         f'got {shown!r}') from None


def type_name(kind: Any) -> str:
    """How messages and ``--help`` name a field's type: ``int``, ``int or null``,
    ``list of int or null``."""
    inner, optional = _unwrap_optional(kind)
    if typing.get_origin(inner) is list:
        name = f'list of {typing.get_args(inner)[0].__name__}'
    else:
        name = inner.__name__
    return f'{name} or null' if optional else name


def is_list_field(f: dataclasses.Field) -> bool:
    """Whether a field holds a list (the CLI reads it as ``--key v1 v2 ...``)."""
    return typing.get_origin(_unwrap_optional(f.type)[0]) is list


def _unwrap_optional(kind: Any) -> Tuple[Any, bool]:
    # Optional[X] is Union[X, None]: the schema's only unions.
    args = typing.get_args(kind)
    if typing.get_origin(kind) is Union and type(None) in args:
        (inner,) = [a for a in args if a is not type(None)]
        return inner, True
    return kind, False


def _parse_scalar(kind: type, text: str) -> Any:
    if kind is bool:
        lowered = text.strip().lower()
        if lowered in ('true', 'yes', '1', 'on'):
            return True
        if lowered in ('false', 'no', '0', 'off'):
            return False
        raise ValueError
    return kind(text) if kind is not str else text


def _check_type(name: str, value: Any, kind: Any) -> None:
    inner, optional = _unwrap_optional(kind)
    if optional and value is None:
        return
    if typing.get_origin(inner) is list:
        (item,) = typing.get_args(inner)
        ok = isinstance(value, list) and all(_is_instance(v, item) for v in value)
    else:
        ok = _is_instance(value, inner)
    if not ok:
        raise TypeError(f'config key {name!r}: expected {type_name(kind)}, '
                        f'got {type(value).__name__} {value!r}')


def _is_instance(value: Any, kind: type) -> bool:
    # bool is an int subclass: True must not pass as an int, nor 1 as a bool.
    if kind is bool:
        return isinstance(value, bool)
    if kind is float:  # an int is a fine float (YAML reads `lr: 1` as an int)
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, kind) and not isinstance(value, bool)


class _ConfigLoader(yaml.SafeLoader):
    """SafeLoader that also reads ``5e-4`` as a float: YAML 1.1 (PyYAML) wants a dot in the
    mantissa and would hand the string ``'5e-4'`` to a float field. A key given twice is an
    error (PyYAML would silently keep the last value)."""

    def construct_mapping(self, node, deep=False):
        seen = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    f'in the mapping that starts on line {node.start_mark.line + 1}', None,
                    f'key {key!r} is given twice (lines {seen[key] + 1} and '
                    f'{key_node.start_mark.line + 1})', key_node.start_mark)
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


_ConfigLoader.add_implicit_resolver(
    'tag:yaml.org,2002:float',
    re.compile(r'^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$'),
    list('-+0123456789'))
