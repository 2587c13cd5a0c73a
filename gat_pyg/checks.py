"""Argument checks shared by every part of the package (torch-free: the config uses them too)."""
import numbers


def check_probability(value, name: str) -> float:
    """A dropout probability: a real number in [0, 1] (as :func:`torch.nn.functional.dropout`
    takes), returned as a float.

    Raises:
        TypeError: not a real number (a bool is not one).
        ValueError: outside [0, 1].
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f'{name}: expected a probability in [0, 1], got '
                        f'{type(value).__name__} {value!r}')
    if not 0.0 <= value <= 1.0:
        raise ValueError(f'{name}: expected a probability in [0, 1], got {value!r}')
    return float(value)
