"""Settings every notebook in ``notebooks/`` reads: small mode, data mirror, output folders.

The notebooks run in two modes. The committed outputs come from a *full* run; CI executes them
in *small* mode (``GAT_PYG_NOTEBOOK_SMALL=1``: fewer epochs, seeds and points), which must finish
in a few minutes on two cores. In full mode the figure that the README shows is written under
``docs/figures/``; everything else (and everything in small mode) goes to a temporary folder,
removed when the kernel exits, so a run never writes into the checkout nor leaves folders
behind. Planetoid graphs are processed into the package's usual data root (``$GAT_PYG_DATA``,
else ``~/.cache/gat_pyg/planetoid``), once for every notebook and command.

Relative paths in the environment variables are read from the directory the notebook was
launched from (``$PWD``, which the shell sets and the kernel inherits), not from the kernel's own
working directory, ``notebooks/``: ``GAT_PYG_PLANETOID_MIRROR=../shared/data/planetoid jupyter
execute notebooks/x.ipynb``, typed at the repository root, means the folder beside the root.
"""
import atexit
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence, Union

import gat_pyg
from gat_pyg.data.names import MIRROR_ENV, ROOT_ENV

SMALL_ENV = 'GAT_PYG_NOTEBOOK_SMALL'
"""``1`` runs the notebooks with small settings (CI)."""


def repository_root() -> Path:
    """The source checkout the package is imported from (``gat_pyg/..``)."""
    return Path(gat_pyg.__file__).resolve().parent.parent


@dataclass
class NotebookSettings:
    """Attributes:
        small (bool): Small mode (``$GAT_PYG_NOTEBOOK_SMALL == '1'``).
        root (Path): The repository root.
        mirror (Path or None): The Planetoid mirror folder (``None`` if no dataset was asked).
        data_root (Path): Where Planetoid graphs are processed (``$GAT_PYG_DATA`` or a
            temporary folder).
        work (Path): A temporary folder for figures and run folders.
        docs_figures (Path or None): ``docs/figures`` in full mode, ``None`` in small mode.
    """
    small: bool
    root: Path
    mirror: Optional[Path]
    data_root: Path
    work: Path
    docs_figures: Optional[Path]

    def pick(self, full, small):
        """``small`` in small mode, else ``full`` (keeps parameter cells one line each)."""
        return small if self.small else full

    def figure(self, name: str, readme: bool = False) -> Path:
        """Path of a figure: under ``docs/figures`` if it is the README's figure and this is a
        full run, else in the temporary folder."""
        if readme and self.docs_figures is not None:
            return self.docs_figures / name
        return self.work / 'figures' / name


def notebook_settings(datasets: Sequence[str] = (), small: Optional[bool] = None,
                      mirror: Optional[Union[str, Path]] = None) -> NotebookSettings:
    """Reads the environment and checks the data a notebook needs before it starts.

    Args:
        datasets: Planetoid names the notebook loads (``'cora'``, ``'citeseer'``); their raw
            files must be in the mirror, else :class:`FileNotFoundError` says where they were
            looked for (the absolute folder) and how to point elsewhere: a notebook fails, it
            does not skip.
        small (bool, optional): Override ``$GAT_PYG_NOTEBOOK_SMALL``.
        mirror (str, optional): The mirror folder. (default: ``$GAT_PYG_PLANETOID_MIRROR``, read
            from the launch directory if relative, else ``../shared/data/planetoid`` from the
            repository root)
    """
    from gat_pyg.data.planetoid import resolve_root

    root = repository_root()
    if small is None:
        small = os.environ.get(SMALL_ENV, '') == '1'
    found = None
    if datasets:
        chosen = mirror or os.environ.get(MIRROR_ENV)
        origin = ('the mirror argument' if mirror else
                  f'${MIRROR_ENV}={chosen!r}, read from the launch directory {launch_dir()}'
                  if chosen else f'the default, ../shared/data/planetoid from the repository '
                                 f'root {root}')
        # Absolute and normalised, but symlinks kept: the folder as the user named it.
        found = Path(os.path.abspath(launch_dir() / Path(chosen).expanduser() if chosen
                                     else root.parent / 'shared' / 'data' / 'planetoid'))
        missing = [f'ind.{name.lower()}.x' for name in datasets
                   if not (found / f'ind.{name.lower()}.x').is_file()]
        if missing:
            raise FileNotFoundError(
                f"the Planetoid mirror {found} ({origin}) lacks {', '.join(missing)}: these "
                f'notebooks run offline from a folder holding the raw ind.<name>.* files; set '
                f'{MIRROR_ENV} to that folder (an absolute path, or one relative to where you '
                'launch the notebook)')
    work = Path(tempfile.mkdtemp(prefix='gat_pyg_notebook_'))
    atexit.register(shutil.rmtree, work, ignore_errors=True)
    data_root = launch_dir() / resolve_root() if os.environ.get(ROOT_ENV) else resolve_root()
    return NotebookSettings(small=small, root=root, mirror=found, data_root=data_root,
                            work=work,
                            docs_figures=None if small else root / 'docs' / 'figures')


def launch_dir() -> Path:
    """The directory the notebook (or script) was launched from: ``$PWD`` as the launching shell
    set it, if it names a directory, else the current one."""
    pwd = os.environ.get('PWD')
    return Path(pwd) if pwd and os.path.isabs(pwd) and os.path.isdir(pwd) else Path.cwd()
