"""Command-line overrides: the text of ``--key value`` turned into a config value of the key's
type, so a value typed on the command line meets the same checks as one read from YAML.

This module imports no torch.
"""
import typing
from typing import Any, Sequence, Union

from gat_pyg.train.schema import fields_by_name, type_name, unwrap_optional
from gat_pyg.train.suggestions import did_you_mean


def parse_override(key: str, text: Union[str, Sequence[str]]) -> Any:
    """Convert the command-line text of ``--key text`` to the field's type.

    A list field (``num_neighbors``) takes the words of ``--key 10 10`` as a sequence (or one
    string of words); an optional field takes ``none`` / ``null`` for ``None``; a bool takes
    ``true/false``, ``yes/no``, ``on/off``, ``1/0``.

    Raises:
        ValueError: an unknown key (with the closest known one) or a text that is not a value
            of the field's type, naming the key and the type.
    """
    known = fields_by_name()
    if key not in known:
        raise ValueError(f'unknown config key {key!r}{did_you_mean(key, list(known))}')
    kind = known[key].type
    words = text.split() if isinstance(text, str) else list(text)
    inner, optional = unwrap_optional(kind)
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


def _parse_scalar(kind: type, text: str) -> Any:
    if kind is bool:
        lowered = text.strip().lower()
        if lowered in ('true', 'yes', '1', 'on'):
            return True
        if lowered in ('false', 'no', '0', 'off'):
            return False
        raise ValueError
    return kind(text) if kind is not str else text
