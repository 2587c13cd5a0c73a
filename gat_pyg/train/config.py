"""A run's config from its sources: a config file (with its ``extends`` chain) and overrides on
top, the rest resolved from the (dataset, model) pair's file.

The pieces live by job: the schema and the one resolver of unset keys in
:mod:`gat_pyg.train.schema`, reading YAML files and their inheritance in
:mod:`gat_pyg.train.config_files`, typing command-line text in :mod:`gat_pyg.train.overrides`,
and "did you mean" in :mod:`gat_pyg.train.suggestions`. This module joins a file and overrides
(:func:`load_config`) and picks the file of a run given without one (:func:`resolve_config`).
:class:`TrainConfig` and :func:`parse_override` are importable from here as before.

This module imports no torch.
"""
from pathlib import Path
from typing import Any, Mapping, Optional, Union

from gat_pyg.train.config_files import config_path, read_config_chain
from gat_pyg.train.overrides import parse_override
from gat_pyg.train.schema import (TrainConfig, check_names, describe_origin, fields_by_name,
                                  neutral_default, unused_keys)

__all__ = ['TrainConfig', 'load_config', 'parse_override', 'resolve_config']

PathLike = Union[str, Path]


def load_config(path: PathLike, overrides: Optional[Mapping[str, Any]] = None, *,
                overrides_origin: str = 'overrides',
                config_dir: Optional[PathLike] = None) -> TrainConfig:
    """Read a YAML config file (following its ``extends`` chain) and apply ``overrides`` (already
    typed, e.g. from :func:`parse_override`) on top of it; keys that neither sets come from the
    file of the resulting (dataset, model) pair, as for :class:`TrainConfig`.

    Args:
        path: The YAML file, a mapping of config keys to values.
        overrides: ``{key: value}`` replacing the file's values.
        overrides_origin (str): How messages name the overrides' origin (the CLI:
            ``'command line'``). (default: ``'overrides'``)
        config_dir: Folder of the pair files that give the keys left unset.
            (default: the shipped configs)

    Raises:
        FileNotFoundError: no such file (the message lists the files beside it), or a file it
            extends is missing.
        ValueError / TypeError: a YAML syntax error (with its line and column), an empty file,
            a duplicate key, a file written for another model than the overrides choose, or as
            :meth:`TrainConfig.from_dict`; each message names the key and the file (or the
            overrides) its value came from.
    """
    path = Path(path)
    file_values, origins = read_config_chain(path)
    values = dict(file_values)
    for key, value in (overrides or {}).items():
        values[key] = value
        origins[key] = overrides_origin
    values = check_names(values, origins)
    _check_file_fits_overrides(path, file_values, values, overrides_origin)
    return TrainConfig.from_dict(values, origins, config_dir=config_dir)


def resolve_config(path: Optional[PathLike], overrides: Optional[Mapping[str, Any]] = None, *,
                   config_dir: Optional[PathLike] = None,
                   overrides_origin: str = 'overrides') -> TrainConfig:
    """The config of a run: ``path`` with ``overrides`` on top, or, without ``path``, the
    ``overrides`` on the file of the (dataset, model) they name (default: cora, gat), so that a
    run without a config file trains that pair's paper settings, never another model's. The
    same resolution as ``TrainConfig.from_dict(overrides)``.

    Raises:
        FileNotFoundError: no file for that pair (the message says which file was looked for).
        ValueError / TypeError: as :func:`load_config`.
    """
    overrides = dict(overrides or {})
    if path is not None:
        return load_config(path, overrides, overrides_origin=overrides_origin,
                           config_dir=config_dir)
    return TrainConfig.from_dict(overrides, {key: overrides_origin for key in overrides},
                                 config_dir=config_dir)


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
        unused = unused_keys([k for k in file_values if k != decider], decider, chosen)
        if not unused:
            continue
        known = fields_by_name()
        pair = [values.get(key, file_values.get(key, neutral_default(known[key])))
                for key in ('dataset', 'model')]
        better = config_path(*pair, path.parent)
        instead = f'use {better}' if better.is_file() else \
            f"use a config written for {decider} {chosen!r}"
        raise ValueError(
            f'{path} is written for {decider} {written_for!r}: it sets {", ".join(unused)}, '
            f'which {decider} {chosen!r} (from {describe_origin(overrides_origin)}) does not '
            f'use; {instead} instead of overriding {decider}')
