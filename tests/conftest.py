"""Fixtures shared by the data, model, training and CLI tests: the real Planetoid mirror, and
the devices to run on.

The mirror is ``../shared/data/planetoid`` from the repository root (or
``$GAT_PYG_PLANETOID_MIRROR``, which CI points at the same folder). Tests that need it fail, not
skip, when it is missing: a silently skipped data suite would hide a broken checkout.
"""
import os
import re
from pathlib import Path

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MIRROR = REPO_ROOT.parent / 'shared' / 'data' / 'planetoid'
README = REPO_ROOT / 'README.md'
SECTION_HEADING = re.compile(r'^#{2,3} (.+)$', re.M)
"""A section of the README or a docs page: a level-2 or level-3 heading. Tests find the examples
and listings they check by heading, so a section can move (or become a subsection) without
the test losing it."""


def markdown_section(title: str, path: Path = README) -> str:
    """The text under the ``##`` or ``###`` heading ``title`` of ``path``, up to the next heading
    of either level (a level-2 section's subsections are not part of it)."""
    text = path.read_text()
    headings = list(SECTION_HEADING.finditer(text))
    for i, heading in enumerate(headings):
        if heading.group(1).strip() == title:
            end = headings[i + 1].start() if i + 1 < len(headings) else len(text)
            return text[heading.end():end]
    raise AssertionError(f'{path.name} has no section {title!r}')


@pytest.fixture(scope='session')
def readme_section():
    """:func:`markdown_section`, for tests in any folder."""
    return markdown_section


@pytest.fixture(scope='session')
def mirror() -> Path:
    """The Planetoid mirror folder holding the Cora and CiteSeer raw files."""
    folder = Path(os.environ.get('GAT_PYG_PLANETOID_MIRROR') or DEFAULT_MIRROR)
    if not (folder / 'ind.cora.x').is_file() or not (folder / 'ind.citeseer.x').is_file():
        pytest.fail(f'the Planetoid mirror is missing: expected the ind.cora.* and '
                    f'ind.citeseer.* files in {folder} (../shared/data/planetoid from the '
                    f'repository root {REPO_ROOT}, or set GAT_PYG_PLANETOID_MIRROR)')
    return folder


@pytest.fixture(scope='session')
def data_root(tmp_path_factory, mirror) -> Path:
    """A dataset root shared by the session, so each graph is processed once."""
    return tmp_path_factory.mktemp('planetoid')


@pytest.fixture(scope='session')
def cora(data_root, mirror):
    """Cora, public split, sparse features."""
    from gat_pyg.data import load_planetoid
    return load_planetoid('cora', root=data_root, mirror=str(mirror), sparse=True)


CUDA_MISSING = 'CUDA not available'


def _triton_missing() -> bool:
    import importlib.util
    return importlib.util.find_spec('triton') is None


@pytest.fixture(params=['cpu', pytest.param('cuda', marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason=CUDA_MISSING)), pytest.param(
    'cuda+triton', marks=pytest.mark.skipif(not torch.cuda.is_available() or _triton_missing(),
                                             reason=f'{CUDA_MISSING} (or triton)'))])
def device(request):
    """Each test that takes it runs on the CPU, and on the first GPU when CUDA is available:
    there with the kernels CUDA gets by default, and once more with the Triton kernels serving
    it (what GAT_PYG_TRITON=1 does). Without CUDA the GPU cases are collected and reported as
    skipped, 'CUDA not available'."""
    if request.param == 'cuda+triton':
        from gat_pyg import kernels
        with kernels.use_backend('triton', 'cuda'):
            yield torch.device('cuda')
    else:
        yield torch.device(request.param)
