"""Argument checks that every part of the package shares and that need no torch.

The training config (:mod:`gat_pyg.train.schema`), whose module must import without torch so
that ``gat-pyg`` answers argument errors at once, and the models and layers check their dropout
arguments with the same function, so a probability means one thing everywhere: a number in
``[0, 1]``, the range :func:`torch.nn.functional.dropout` accepts (``p = 1`` drops everything).
"""
import numbers
from typing import Any


def check_probability(value: Any, name: str) -> float:
    """A dropout probability: a real number ``p`` with ``0 <= p <= 1``.

    Args:
        value: The argument as given (a Python or NumPy number).
        name (str): How the message names the argument (``'dropout'``, ``"config key
            'attn_dropout'"``).

    Returns:
        ``value`` as a ``float``.

    Raises:
        TypeError: ``value`` is not a real number, or is a ``bool`` (``True`` is not a
            probability, though Python counts it as the integer 1).
        ValueError: ``value`` is outside ``[0, 1]``, or NaN.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f'{name}: expected a probability, a number in [0, 1], got '
                        f'{type(value).__name__} {value!r}')
    # Written so that NaN, for which every comparison is false, fails too.
    if not 0.0 <= value <= 1.0:
        raise ValueError(f'{name}: expected a probability in [0, 1], got {value!r}')
    return float(value)
