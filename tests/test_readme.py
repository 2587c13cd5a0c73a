"""Every Python example in the README runs as written (in a scratch folder)."""
import contextlib
import io
import re
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
# Checked with its own assertions in tests/nn/test_masked_gat_conv.py.
TESTED_ELSEWHERE = {'Masked attention'}


def python_blocks():
    """``(section, code)`` of every ```python block; the section is the nearest ``##`` or ``###``
    heading above it (the README's "Use" and "Train" hold their examples in subsections)."""
    blocks, section = [], None
    for part in re.split(r'^(#{2,3} .*)$', (ROOT / 'README.md').read_text(), flags=re.M):
        if re.match(r'#{2,3} ', part):
            section = part.lstrip('#').strip()
        elif section not in TESTED_ELSEWHERE:
            blocks += [(section, b) for b in re.findall(r'```python\n(.*?)```', part, re.S)]
    return blocks


BLOCKS = python_blocks()


def test_readme_has_examples():
    assert {'Layers', 'The prepared graph', 'Models', 'Run folders and checkpoints',
            'Devices and precision'} <= {section for section, _ in BLOCKS}


@pytest.mark.parametrize('section,code', BLOCKS, ids=[s for s, _ in BLOCKS])
def test_readme_example_runs(section, code, tmp_path, monkeypatch, mirror):
    monkeypatch.chdir(tmp_path)
    (tmp_path / 'configs').symlink_to(ROOT / 'configs')
    monkeypatch.setenv('GAT_PYG_PLANETOID_MIRROR', str(mirror))
    monkeypatch.setenv('GAT_PYG_DATA', str(tmp_path / 'data'))
    printed = io.StringIO()
    namespace = {}
    with contextlib.redirect_stdout(printed):
        exec(compile(code, f'README.md ({section})', 'exec'), namespace)
    if section == 'Devices and precision':
        assert printed.getvalue().strip() == 'torch.float32 torch.bfloat16 tensor(True)'
    if section == 'The prepared graph':
        assert printed.getvalue().strip() == '597 torch.Size([100, 8])'
    if section == 'Models':
        # The comments in the example show what it prints.
        assert printed.getvalue().split('\n')[:2] == [
            'True', 'GATConv(1433, 8, heads=8) ELU(alpha=1.0)']
    if section == 'Layers':
        # The comment in the example shows what it prints.
        assert printed.getvalue().strip() == (
            'GATConv(16, 8, heads=2) torch.Size([4, 16]) torch.Size([8, 2])')
        assert torch.isfinite(namespace['out']).all()
