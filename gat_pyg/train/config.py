"""The run configuration: one typed dataclass is the schema, YAML files and CLI flags override it.

Every field carries its help text (shown by ``gat-pyg train --help``) and, where it has one, its
set of allowed values. Fields that only some models read (attention heads) name those models, and
fields that only some datasets read (the Planetoid split, graphs per batch of the inductive PPI)
name those datasets; a config for another model or dataset may not set them, and its resolved YAML
leaves them out, so every key a file holds is a key the run uses.
"""
import dataclasses
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import yaml

from gat_pyg.data.planetoid import DATASETS, SPLITS

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
    hidden_channels: int = _field(8, 'Hidden features (per head for gat / gatv2).')
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
            value = getattr(self, f.name)
            if choices is not None and value not in choices:
                raise ValueError(f"config key '{f.name}': expected one of "
                                 f"{', '.join(choices)}, got {value!r}")
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
    def from_dict(cls, values: Mapping[str, Any]) -> 'TrainConfig':
        """A config from a mapping of field names to typed values (a parsed YAML file).

        Raises:
            ValueError: an unknown key, a key the chosen model does not use, or a bad value.
            TypeError: a value of the wrong type.
        """
        known = {f.name: f for f in dataclasses.fields(cls)}
        for key in values:
            if key not in known:
                raise ValueError(f'unknown config key {key!r}; known keys: '
                                 f"{', '.join(known)}")
        model = values.get('model', known['model'].default)
        dataset = values.get('dataset', known['dataset'].default)
        for key in values:
            models = known[key].metadata['models']
            if models is not None and model not in models:
                raise ValueError(f"config key {key!r} is only used by models "
                                 f"{', '.join(models)}, not by {model!r}; remove it")
            datasets = known[key].metadata['datasets']
            if datasets is not None and dataset not in datasets:
                raise ValueError(f"config key {key!r} is only used by datasets "
                                 f"{', '.join(datasets)}, not by {dataset!r}; remove it")
        return cls(**values)

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


def load_config(path: Union[str, Path], overrides: Optional[Mapping[str, Any]] = None
                ) -> TrainConfig:
    """Read a YAML config file and apply ``overrides`` (already typed, e.g. from
    :func:`parse_override`) on top of it.

    Raises:
        ValueError / TypeError: as :meth:`TrainConfig.from_dict`, the message naming the file.
    """
    path = Path(path)
    with open(path) as f:
        values = yaml.load(f, Loader=_ConfigLoader)
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise ValueError(f'{path}: a config file must be a YAML mapping of keys to values, '
                         f'got {type(values).__name__}')
    values.update(overrides or {})
    try:
        return TrainConfig.from_dict(values)
    except (TypeError, ValueError) as err:
        raise type(err)(f'{path}: {err}') from None


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
    mantissa and would hand the string ``'5e-4'`` to a float field."""


_ConfigLoader.add_implicit_resolver(
    'tag:yaml.org,2002:float',
    re.compile(r'^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$'),
    list('-+0123456789'))
