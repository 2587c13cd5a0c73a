"""Config files: one YAML file read strictly, the chain of files it ``extends``, and where the
file of a (dataset, model) pair lives.

A config file is a YAML mapping of config keys to values. It holds only what differs from the
file it builds on, named by its ``extends`` key (a path relative to the file's own folder), as
nanoGPT's config files override only what they change::

    # configs/citeseer_gat.yaml
    extends: cora_gat.yaml
    dataset: citeseer

Reading a file reads its chain from the root down (``cora_gat.yaml``, then ``citeseer_gat.yaml``)
and lets each file replace its parent's values; every key remembers the file that set it, so an
error names the file to edit. ``extends`` is not a config key: it never reaches
:class:`~gat_pyg.train.schema.TrainConfig`, nor a run's resolved ``config.yaml``.

The shipped files live inside the package, ``gat_pyg/configs/`` (``configs/`` at the root of a
source checkout is a link to it), so an installed package finds them as a checkout does.

This module imports no torch.
"""
import re
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

import yaml

from gat_pyg.train.suggestions import closest

EXTENDS = 'extends'
"""The key naming the file a config file builds on."""

PathLike = Union[str, Path]


def default_config_dir() -> Path:
    """The folder of the shipped ``<dataset>_<model>.yaml`` files: ``configs/`` inside the
    package (the same files in a source checkout, an editable install or a wheel)."""
    return Path(__file__).resolve().parent.parent / 'configs'


def config_path(dataset: str, model: str, config_dir: Optional[PathLike] = None) -> Path:
    """``<config_dir>/<dataset>_<model>.yaml``: the file holding that pair's settings (names in
    any case; ``config_dir`` defaults to :func:`default_config_dir`)."""
    folder = Path(config_dir) if config_dir is not None else default_config_dir()
    return folder / f'{str(dataset).lower()}_{str(model).lower()}.yaml'


def read_config_chain(path: PathLike) -> Tuple[Dict[str, Any], Dict[str, str]]:
    """The values a config file gives, its ``extends`` chain applied, and where each came from.

    Args:
        path: The YAML file.

    Returns:
        ``(values, origins)``: ``{key: value}`` without ``extends``, and ``{key: file}``
        naming the file of the chain that set each key (as ``str``, the path as the chain
        reached it: ``configs/citeseer_gat.yaml`` extends ``configs/cora_gat.yaml``).

    Raises:
        FileNotFoundError: the file, or a file it extends, does not exist (the message names
            the file that extends it).
        ValueError: not YAML, empty, not a mapping, a key given twice, an ``extends`` that is
            not one file name, or a chain that comes back to a file already in it.
    """
    chain: List[Tuple[Path, Dict[str, Any]]] = []
    seen = set()
    current = Path(path)
    while True:
        key = current.resolve()
        if key in seen:
            loop = ' -> '.join(str(p) for p, _ in chain + [(current, None)])
            raise ValueError(f"{chain[0][0]}: the '{EXTENDS}' chain comes back to a file "
                             f'already in it: {loop}')
        seen.add(key)
        try:
            values = read_config_file(current)
        except FileNotFoundError as err:
            if not chain:
                raise
            raise FileNotFoundError(f'{chain[-1][0]}: {EXTENDS}: {err}') from None
        chain.append((current, values))
        parent = values.get(EXTENDS)
        if parent is None:
            break
        if not isinstance(parent, str) or not parent.strip():
            raise ValueError(f"{current}: '{EXTENDS}' must name one config file (a path relative "
                             f'to {current.parent}), got {parent!r}')
        current = current.parent / parent
    merged: Dict[str, Any] = {}
    origins: Dict[str, str] = {}
    for file, values in reversed(chain):              # the root first; each child replaces
        for key, value in values.items():
            if key != EXTENDS:
                merged[key] = value
                origins[key] = str(file)
    return merged, origins


def read_config_file(path: PathLike) -> Dict[str, Any]:
    """The mapping one YAML config file holds (its ``extends`` key included, not followed; not
    yet checked against the schema).

    Raises:
        FileNotFoundError: no such file (the message suggests a close name or lists the files
            beside it).
        ValueError: not YAML (with the line and column), empty or only comments, not a mapping,
            or a key given twice.
    """
    path = Path(path)
    if not path.is_file():
        siblings = sorted(p.name for p in path.parent.glob('*.yaml')) if path.parent.is_dir() \
            else []
        close = closest(path.stem, [Path(name).stem for name in siblings])
        hint = f' (did you mean {path.parent / close}.yaml?)' if close else ''
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
        # An empty file would otherwise be a run of the defaults, whatever the user meant.
        raise ValueError(f'{path}: the file holds no settings (it is empty or only comments); '
                         f'a config file is a YAML mapping of config keys to values, e.g. '
                         f"'{EXTENDS}: cora_gat.yaml' and 'lr: 0.01' on two lines")
    if not isinstance(values, dict):
        raise ValueError(f'{path}: a config file must be a YAML mapping of keys to values, '
                         f'got {type(values).__name__}')
    return values


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
