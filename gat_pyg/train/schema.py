"""The run configuration's schema: one typed dataclass, :class:`TrainConfig`, and its checks.

Every field carries its help text (shown by ``gat-pyg train --help``), the group ``--help``
lists it under and, where it has one, its set of allowed values. Fields that only some models
read (attention heads) name those models, and fields that only some datasets read (the
Planetoid split, graphs per batch of the inductive PPI) name those datasets; a config for
another model or dataset may not set them, holds ``None`` for them, and its resolved YAML
leaves them out, so every key a file holds is a key the run uses.

**Where a value comes from** (one resolver, used by the Python API and the CLI alike): a value
given explicitly (a constructor argument, a key of a ``--config`` file, a ``--key value`` flag),
else the value the file of the config's (dataset, model) pair gives,
``configs/<dataset>_<model>.yaml`` with its ``extends`` chain
(:mod:`gat_pyg.train.config_files`), else, for the keys about *how* a run executes (``seed``,
``device``, ``precision``, batching, ...) and only for those, the neutral default of the field
below. The papers' settings (widths, heads, dropouts, activation, learning rate, L2, stopping
rule, epochs) have no default here: they are written only in the config files. So
``TrainConfig(dataset='cora', model='gcn')``, ``TrainConfig.from_dict({'dataset': 'cora',
'model': 'gcn'})`` and ``load_config('configs/cora_gcn.yaml')`` are one and the same config:
Kipf's GCN on Cora, never a GCN with the GAT's settings.

Error messages name the key and where its value came from (a file, or the command line), and
what to do. This module imports no torch (``gat-pyg --help`` builds its options from it).
"""
import dataclasses
import re
import typing
from dataclasses import InitVar, dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

import yaml

from gat_pyg.checks import check_probability
from gat_pyg.data.names import DATASETS, SPLITS
from gat_pyg.train.config_files import EXTENDS, config_path, read_config_chain
from gat_pyg.train.suggestions import did_you_mean

MODEL_NAMES = ('gat', 'gatv2', 'gcn', 'mlp')
ATTENTION_MODELS = ('gat', 'gatv2')
EARLY_STOPPING = ('gat', 'gcn', 'none')
INDUCTIVE_DATASETS = ('ppi',)
"""Datasets of many graphs, trained whole graph by graph (:mod:`gat_pyg.train.inductive`)."""
PLANETOID_DATASETS = tuple(DATASETS)
PRECISIONS = ('32', 'bf16-mixed', '16-mixed')
"""Lightning's precision names (:mod:`gat_pyg.train.device`)."""
BACKENDS = ('auto', 'gloo', 'nccl')
ACTIVATIONS = ('relu', 'elu', 'leaky_relu', 'gelu', 'silu', 'selu', 'tanh', 'sigmoid')
"""Activations between layers: names :func:`torch_geometric.nn.resolver.activation_resolver`
resolves (to ``torch.nn.ReLU``, ``ELU``, ...), checked here so that a typo fails before torch is
imported."""
DEVICE_FORM = re.compile(r'auto|cpu|cuda(:[0-9]+)?')
"""The device names a config may hold; whether the machine has them is checked at run time."""
COMMAND_LINE = 'command line'
"""The origin the CLI gives its ``--key value`` overrides in messages."""
GROUPS = ('run', 'model', 'optimisation and stopping', 'data and batching',
          'devices and precision')
"""The groups of config keys, in the order ``--help`` lists them (the common ones first)."""


class _Required:
    """The neutral default of a field that has none: a paper setting, written only in the
    config files."""

    def __repr__(self) -> str:
        return '<required>'


class _Unset:
    """The dataclass default of every field: "not given", so that construction can tell a value
    given explicitly from one to resolve."""

    def __repr__(self) -> str:
        return '<from the config file>'


REQUIRED = _Required()
UNSET = _Unset()


def _field(help: str, group: str, default: Any = REQUIRED,
           choices: Optional[Sequence[str]] = None, models: Optional[Sequence[str]] = None,
           datasets: Optional[Sequence[str]] = None) -> Any:
    assert group in GROUPS, group
    return field(default=UNSET, metadata={'help': help, 'group': group, 'default': default,
                                          'choices': choices, 'models': models,
                                          'datasets': datasets})


@dataclass
class TrainConfig:
    """One training run: data, model, optimiser and stopping rule.

    Construct it with the keys you set; every other key is resolved as the module docstring
    says: from ``configs/<dataset>_<model>.yaml`` for the papers' settings, from the neutral
    defaults below for how the run executes. ``TrainConfig()`` is the paper's GAT on Cora,
    ``TrainConfig(model='gcn')`` Kipf's GCN on Cora.

    Args:
        config_dir (str or Path, optional): The folder of the ``<dataset>_<model>.yaml`` files
            the unset keys are read from (init-only, not a field). (default: the shipped
            configs, :func:`gat_pyg.train.config_files.default_config_dir`)

    Raises:
        TypeError: a value of the wrong type (naming the key).
        ValueError: a value out of range or not among the choices, a key the model or dataset
            does not use, or a key that neither the arguments nor the pair's file set.
        FileNotFoundError: a key is unset and the pair has no config file.
    """

    dataset: str = _field('Dataset: a Planetoid graph, or ppi (inductive, many graphs).', 'run',
                          default='cora', choices=PLANETOID_DATASETS + INDUCTIVE_DATASETS)
    split: str = _field('Node split: public (20 per class / 500 / 1000), full, or random '
                        '(drawn with seed).', 'data and batching', choices=SPLITS,
                        datasets=PLANETOID_DATASETS)
    model: str = _field('Model architecture.', 'run', default='gat', choices=MODEL_NAMES)
    hidden_channels: int = _field(
        'Hidden features: per head for gat / gatv2 (a hidden layer is heads x '
        'hidden_channels wide; PyG\'s torch_geometric.nn.models.GAT reads it as the total '
        'width instead), the layer width for gcn / mlp.', 'model')
    num_layers: int = _field('Number of graph layers.', 'model')
    heads: int = _field('Attention heads of each hidden layer (concatenated).', 'model',
                        models=ATTENTION_MODELS)
    out_heads: int = _field('Attention heads of the output layer (averaged).', 'model',
                            models=ATTENTION_MODELS)
    dropout: float = _field("Dropout on every layer's input features.", 'model')
    attn_dropout: float = _field('Dropout on the attention coefficients.', 'model',
                                 models=ATTENTION_MODELS)
    message_dropout: float = _field(
        'Dropout on the projected features each layer sums (the official GAT code drops '
        'them with its input dropout rate; PyG does not).', 'model', models=ATTENTION_MODELS)
    act: str = _field('Activation after every hidden layer.', 'model', choices=ACTIVATIONS)
    bias: bool = _field('Learn an additive bias in every layer.', 'model')
    residual: bool = _field('Linear skip connection in every attention layer (the GAT '
                            "paper's PPI model).", 'model', models=ATTENTION_MODELS)
    per_head_dropout: bool = _field(
        "Draw the input dropout (dropout) of every attention layer separately for each head, as "
        'the official GAT code does inside each head (utils/layers.py, attn_head); false: one '
        'mask for all heads of a layer. See docs/official_code.md.', 'model',
        models=ATTENTION_MODELS)
    att_bias: bool = _field(
        'Learn a bias per head in the attention score, before its LeakyReLU (the official GAT '
        "code's conv1d biases of f_1 and f_2 in attn_head); gat only, gatv2 must keep it false. "
        'See docs/official_code.md.', 'model', models=ATTENTION_MODELS)
    graphs_per_batch: int = _field('Whole graphs per mini-batch of an inductive dataset '
                                   '(paper, PPI: 2).', 'data and batching',
                                   datasets=INDUCTIVE_DATASETS)
    lr: float = _field('Adam learning rate.', 'optimisation and stopping')
    weight_decay: float = _field('L2 penalty (Adam weight_decay).', 'optimisation and stopping')
    weight_decay_first_layer_only: bool = _field(
        'Apply weight_decay to the first layer only (as Kipf & Welling\'s GCN).',
        'optimisation and stopping')
    epochs: int = _field('Maximum number of epochs (the stopping rule usually ends the run '
                         'first).', 'run')
    early_stopping: str = _field(
        "Stopping rule: gat (official GAT: patience on val acc or loss, test the "
        "checkpoint with the best val acc and loss), gcn (Kipf: stop when val loss plus the L2 "
        "term exceeds its mean over the previous `patience` epochs, test the last model), none "
        "(run all epochs, test the last model).", 'optimisation and stopping',
        choices=EARLY_STOPPING)
    patience: int = _field('gat rule: epochs without improvement; gcn rule: averaging '
                           'window.', 'optimisation and stopping')
    seed: int = _field('Seed of initialisation, dropout and the random split.', 'run',
                       default=0)
    sparse_features: bool = _field('Keep node features as a torch.sparse tensor (the same '
                                   'model, much faster on bag-of-words features; dropout masks, '
                                   'and so a seed\'s run, differ from dense).',
                                   'data and batching', default=True,
                                   datasets=PLANETOID_DATASETS)
    batch_size: Optional[int] = _field(
        'Mini-batch training: target (training) nodes per batch, sampled with '
        "PyG's NeighborLoader; null = full-batch training.", 'data and batching', default=None,
        datasets=PLANETOID_DATASETS)
    num_neighbors: Optional[List[int]] = _field(
        'Mini-batch training: neighbours sampled per node, one count per layer, -1 = all '
        "(as NeighborLoader: the first count is for the batch's target nodes, the next for "
        'their sampled neighbours, ...); null = all at every hop. Needs batch_size.',
        'data and batching', default=None, datasets=PLANETOID_DATASETS)
    inference_batch_size: Optional[int] = _field(
        'Layer-wise evaluation: validation and test compute each layer for all nodes in '
        'batches of this many target nodes over their full in-neighbourhood '
        '(BaseModel.inference), so no whole-graph activation of a layer is needed at once; '
        'the same numbers as one full-graph forward pass. null = one full-graph forward pass.',
        'data and batching', default=None, datasets=PLANETOID_DATASETS)
    device: str = _field(
        'Where to train and evaluate: auto (the GPU when CUDA is available, else the '
        'CPU), cpu, cuda or cuda:N. Under torchrun each process uses cuda:LOCAL_RANK (auto: the '
        'CPU when the machine has fewer GPUs than processes).', 'run', default='auto')
    precision: str = _field(
        "Arithmetic of the forward passes (Lightning's names): 32 = float32; bf16-mixed "
        '/ 16-mixed = autocast to bfloat16 / float16 with float32 parameters (16-mixed also '
        'scales the loss).', 'devices and precision', default='32', choices=PRECISIONS)
    deterministic: bool = _field(
        'Call torch.use_deterministic_algorithms(True) for the run: an operation '
        'without a deterministic implementation then raises instead of varying.',
        'devices and precision', default=False)
    backend: str = _field(
        'torch.distributed backend under torchrun: auto (nccl on GPUs, gloo on the '
        'CPU), gloo or nccl.', 'devices and precision', default='auto', choices=BACKENDS)
    config_dir: InitVar[Optional[Union[str, Path]]] = None

    def __post_init__(self, config_dir: Optional[Union[str, Path]]) -> None:
        known = fields_by_name()
        for key in ('dataset', 'model'):             # they choose the file of the other keys
            if getattr(self, key) is UNSET:
                setattr(self, key, neutral_default(known[key]))
            _check_type(key, getattr(self, key), str)
            setattr(self, key, getattr(self, key).lower())
            _check_choice(key, getattr(self, key), known[key].metadata['choices'])
        # Keys given explicitly that this model or dataset does not read: refused, as in files.
        given = {name: value for name, value in vars(self).items()
                 if name in known and value is not UNSET and value is not None}
        _check_keys_apply(given, {})
        filled = self._resolve_unset(config_dir)
        try:
            self._check_values()
        except (TypeError, ValueError) as err:
            key = getattr(err, 'key', None) or _key_named_in(str(err))
            raise type(err)(_at(filled.get(key), str(err))) from None

    def _resolve_unset(self, config_dir: Optional[Union[str, Path]]) -> Dict[str, str]:
        """Give every unset key its value (module docstring); returns ``{key: file}`` for the
        keys read from the pair's config file chain."""
        unset = [f for f in dataclasses.fields(self) if getattr(self, f.name) is UNSET]
        used = [f for f in unset if applies(f, self.model, self.dataset)]
        file_values: Dict[str, Any] = {}
        origins: Dict[str, str] = {}
        if used:
            try:
                file_values, origins = pair_settings(self.dataset, self.model, config_dir)
            except FileNotFoundError:
                required = [f.name for f in used if f.metadata['default'] is REQUIRED]
                if required:
                    file = config_path(self.dataset, self.model, config_dir)
                    raise FileNotFoundError(
                        f'no config file for model {self.model!r} on dataset '
                        f"{self.dataset!r}: {file} does not exist, and it would give "
                        f"{', '.join(required)}; pass them, or a config file (--config FILE), "
                        'or the folder that holds <dataset>_<model>.yaml (--config-dir)'
                    ) from None
        filled = {}
        missing = []
        for f in unset:
            if not applies(f, self.model, self.dataset):
                value = None
            elif f.name in file_values:
                value = file_values[f.name]
                filled[f.name] = origins[f.name]
            elif f.metadata['default'] is not REQUIRED:
                value = f.metadata['default']
            else:
                missing.append(f.name)
                continue
            setattr(self, f.name, value)
        if missing:
            file = config_path(self.dataset, self.model, config_dir)
            keys = ', '.join(repr(name) for name in missing)
            raise ValueError(f"config key{'s' if len(missing) > 1 else ''} {keys} "
                             f"{'are' if len(missing) > 1 else 'is'} not set: neither the "
                             f'arguments nor {file} (and the files it extends) give '
                             f"{'them' if len(missing) > 1 else 'it'}; add "
                             f"{'them' if len(missing) > 1 else 'it'} to the file, or pass "
                             f"{'them' if len(missing) > 1 else 'it'}")
        return filled

    def _check_values(self) -> None:
        if isinstance(self.precision, int) and not isinstance(self.precision, bool):
            self.precision = str(self.precision)      # YAML reads `precision: 32` as an int
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is None and not applies(f, self.model, self.dataset):
                continue
            _check_type(f.name, value, f.type)
            if f.type is float:
                setattr(self, f.name, float(value))
            choices = f.metadata['choices']
            if choices is not None:
                # Names are case-insensitive, as in load_planetoid('CORA'); stored lower-case.
                setattr(self, f.name, value.lower())
                _check_choice(f.name, getattr(self, f.name), choices)
        for name in ('hidden_channels', 'num_layers', 'heads', 'out_heads', 'epochs',
                     'patience', 'graphs_per_batch'):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"config key '{name}': must be >= 1, got {value}")
        for name in ('dropout', 'attn_dropout', 'message_dropout'):
            if getattr(self, name) is not None:
                check_probability(getattr(self, name), f'config key {name!r}')
        if self.att_bias and self.model != 'gat':
            raise ValueError(f"config key 'att_bias': only model 'gat' has an attention bias, "
                             f"not {self.model!r} (GATv2's projection biases already sit inside "
                             f'its LeakyReLU); set it to false')
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
    def from_dict(cls, values: Mapping[str, Any], origins: Optional[Mapping[str, str]] = None,
                  *, config_dir: Optional[Union[str, Path]] = None) -> 'TrainConfig':
        """A config from a mapping of keys to typed values (a parsed YAML file, overrides);
        the keys it leaves out are resolved as for the constructor.

        The dataset and model are checked first (known names, any case), then whether every
        key is one the model and dataset use, then each value.

        Args:
            values: ``{key: value}``.
            origins: ``{key: where its value came from}`` (a file name, ``'command line'``);
                an error about a key names its origin, and a key that another origin's model or
                dataset does not use is reported as such. (default: none named)
            config_dir: As the constructor's. (default: the shipped configs)

        Raises:
            ValueError: an unknown key, a key the chosen model or dataset does not use, or a
                bad value.
            TypeError: a value of the wrong type.
            FileNotFoundError: as the constructor.
        """
        origins = dict(origins or {})
        values = check_names(values, origins)
        _check_keys_apply(values, origins)
        try:
            return cls(**values, config_dir=config_dir)
        except (TypeError, ValueError) as err:
            key = getattr(err, 'key', None) or _key_named_in(str(err))
            raise type(err)(_at(origins.get(key), str(err))) from None

    def to_dict(self) -> Dict[str, Any]:
        """The fields this config's model and dataset use, in declaration order (``from_dict``
        inverts it)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if applies(f, self.model, self.dataset)}

    def to_yaml(self) -> str:
        """The resolved config as YAML."""
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


def pair_settings(dataset: str, model: str, config_dir: Optional[Union[str, Path]] = None
                  ) -> Tuple[Dict[str, Any], Dict[str, str]]:
    """What ``configs/<dataset>_<model>.yaml`` (with its ``extends`` chain) gives: ``({key:
    value}, {key: file that set it})``, each key checked to be a known one that the pair uses.

    Raises:
        FileNotFoundError: no such file (or a file it extends is missing).
        ValueError: an unknown key, a key the pair does not use, or a file written for another
            pair (its ``dataset`` / ``model`` keys name another one).
    """
    file = config_path(dataset, model, config_dir)
    values, origins = read_config_chain(file)
    values = check_names(values, origins)
    for key, wanted in (('dataset', dataset), ('model', model)):
        if values.get(key, wanted) != wanted.lower():
            raise ValueError(_at(origins[key], f'config key {key!r}: the file of the pair '
                                 f'({dataset}, {model}) sets {key} {values[key]!r}; it must '
                                 f'be {wanted.lower()!r} (or unset)'))
    _check_keys_apply({**values, 'dataset': dataset.lower(), 'model': model.lower()}, origins)
    return values, origins


def applies(f: dataclasses.Field, model: str, dataset: Optional[str] = None) -> bool:
    """Whether config field ``f`` is read when training ``model`` (on ``dataset``, if given)."""
    models = f.metadata['models']
    datasets = f.metadata.get('datasets')
    return ((models is None or model in models)
            and (dataset is None or datasets is None or dataset in datasets))


def config_fields() -> Tuple[dataclasses.Field, ...]:
    """The fields of :class:`TrainConfig` (for building CLI options)."""
    return dataclasses.fields(TrainConfig)


def neutral_default(f: dataclasses.Field) -> Any:
    """The value a field takes when neither the arguments nor the config files set it;
    :data:`REQUIRED` for the papers' settings, which have none."""
    return f.metadata['default']


def fields_by_name() -> Dict[str, dataclasses.Field]:
    """``{name: field}`` of :class:`TrainConfig`, in declaration order."""
    return {f.name: f for f in dataclasses.fields(TrainConfig)}


def check_names(values: Mapping[str, Any], origins: Mapping[str, str]) -> Dict[str, Any]:
    """Refuse unknown keys (naming the closest known one and the key's origin), check the
    dataset and model names (before anything that depends on them) and return ``values`` with
    those names lower-case."""
    known = fields_by_name()
    for key in values:
        if key == EXTENDS:
            raise ValueError(_at(origins.get(key), f'{EXTENDS!r} is not a config key: it names '
                                 'the file a config file builds on, and only a file read by '
                                 'load_config may hold it'))
        if key not in known:
            # 'extends' is among the suggestions: a file's 'base:' or 'inherit:' means it.
            raise ValueError(_at(origins.get(key), f'unknown config key {key!r}'
                                 f'{did_you_mean(key, [*known, EXTENDS])}; known keys: '
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


def unused_keys(keys: Iterable[str], decider: str, chosen: str) -> List[str]:
    """The keys among ``keys`` that a run whose ``decider`` ('model' or 'dataset') is
    ``chosen`` does not read."""
    meta = f'{decider}s'
    known = fields_by_name()
    return [key for key in keys if known[key].metadata.get(meta) is not None
            and chosen not in known[key].metadata[meta]]


def _check_keys_apply(values: Mapping[str, Any], origins: Mapping[str, str]) -> None:
    """Refuse a key that the config's model or dataset does not read, naming where the key and
    the model (dataset) came from."""
    known = fields_by_name()
    for decider in ('dataset', 'model'):
        chosen = values.get(decider, neutral_default(known[decider]))
        unused = unused_keys(values, decider, chosen)
        if not unused:
            continue
        key, decided_at = unused[0], origins.get(decider)
        where = f' ({decider} {chosen!r} from {describe_origin(decided_at)})' \
            if decided_at not in (None, origins.get(key)) else ''
        remove = f'remove it from {describe_origin(origins[key])}' if origins.get(key) \
            else 'remove it'
        raise ValueError(_at(origins.get(key), f'config key {key!r} is only used by '
                             f"{decider}s {', '.join(known[key].metadata[f'{decider}s'])}, "
                             f'not by {chosen!r}{where}; {remove}'))


def check_choice(name: str, value: str) -> None:
    """Refuse a ``value`` of config key ``name`` that is not among its choices (any case)."""
    _check_choice(name, value.lower(), fields_by_name()[name].metadata['choices'])


def _check_choice(name: str, value: str, choices: Sequence[str]) -> None:
    if value not in choices:
        raise ValueError(f"config key '{name}': unknown {name} {value!r}"
                         f'{did_you_mean(value, choices)}; expected one of '
                         f"{', '.join(choices)} (any case)")


def _at(origin: Optional[str], message: str) -> str:
    return f'{origin}: {message}' if origin else message


def describe_origin(origin: str) -> str:
    """An origin inside a sentence: a file as its path, anything else as 'the <origin>'."""
    return origin if origin.endswith(('.yaml', '.yml')) or '/' in origin else f'the {origin}'


def _key_named_in(message: str) -> Optional[str]:
    match = re.search(r"config key '(\w+)'", message)
    return match.group(1) if match else None


def type_name(kind: Any) -> str:
    """How messages and ``--help`` name a field's type: ``int``, ``int or null``,
    ``list of int or null``."""
    inner, optional = unwrap_optional(kind)
    if typing.get_origin(inner) is list:
        name = f'list of {typing.get_args(inner)[0].__name__}'
    else:
        name = inner.__name__
    return f'{name} or null' if optional else name


def is_list_field(f: dataclasses.Field) -> bool:
    """Whether a field holds a list (the CLI reads it as ``--key v1 v2 ...``)."""
    return typing.get_origin(unwrap_optional(f.type)[0]) is list


def unwrap_optional(kind: Any) -> Tuple[Any, bool]:
    """``(X, True)`` for ``Optional[X]``, ``(kind, False)`` otherwise (``Optional`` is the
    schema's only union)."""
    args = typing.get_args(kind)
    if typing.get_origin(kind) is Union and type(None) in args:
        (inner,) = [a for a in args if a is not type(None)]
        return inner, True
    return kind, False


def _check_type(name: str, value: Any, kind: Any) -> None:
    inner, optional = unwrap_optional(kind)
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
