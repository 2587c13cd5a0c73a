"""gat_pyg.checks: one probability check for every dropout argument, torch-free."""
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from gat_pyg.checks import check_probability

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize('value', [0, 0.0, 0.5, 1, 1.0, np.float32(0.25), np.float64(1.0),
                                   Fraction(1, 3)])
def test_probabilities_from_zero_to_one_inclusive_pass_as_floats(value):
    """[0, 1], the range of torch.nn.functional.dropout (p = 1 drops everything)."""
    checked = check_probability(value, 'dropout')
    assert checked == float(value) and type(checked) is float


@pytest.mark.parametrize('value', [-0.1, 1.0000001, 2, float('nan'), float('inf'),
                                   -float('inf')])
def test_out_of_range_is_a_value_error_naming_the_argument(value):
    with pytest.raises(ValueError, match=r"^attn_dropout: expected a probability in \[0, 1\], "
                                         f'got {value!r}$'.replace('(', r'\(')
                                                          .replace(')', r'\)')):
        check_probability(value, 'attn_dropout')


@pytest.mark.parametrize('value,kind', [(True, 'bool'), (False, 'bool'), ('0.5', 'str'),
                                        (None, 'NoneType'), ([0.5], 'list'), (1j, 'complex')])
def test_non_numbers_and_bools_are_a_type_error_naming_the_argument(value, kind):
    with pytest.raises(TypeError, match=rf"^config key 'dropout': expected a probability, a "
                                        rf"number in \[0, 1\], got {kind} "):
        check_probability(value, "config key 'dropout'")


def test_the_module_imports_no_torch():
    code = ('import sys, gat_pyg.checks; '
            "print(sorted(m for m in ('torch', 'numpy') if m in sys.modules))")
    printed = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                             env={'PYTHONPATH': str(ROOT), 'PATH': ''}, check=True)
    assert printed.stdout.strip() == '[]'
