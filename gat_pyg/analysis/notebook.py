"""Settings every notebook in ``notebooks/`` reads: small mode, data mirror, output folders.

The notebooks run in two modes. The committed outputs come from a *full* run; CI executes them
in *small* mode (``GAT_PYG_NOTEBOOK_SMALL=1``: fewer epochs, seeds and points), which must finish
in a few minutes on two cores. In full mode the figure that the README shows is written under
``docs/figures/``; everything else (and everything in small mode) goes to a temporary folder, so
a CI run never writes into the checkout.
"""
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence, Union

import gat_pyg
from gat_pyg.data.planetoid import MIRROR_ENV, ROOT_ENV

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
            looked for and how to point elsewhere: a notebook fails, it does not skip.
        small (bool, optional): Override ``$GAT_PYG_NOTEBOOK_SMALL``.
        mirror (str, optional): The mirror folder. (default: ``$GAT_PYG_PLANETOID_MIRROR``, else
            ``../shared/data/planetoid`` from the repository root)
    """
    root = repository_root()
    if small is None:
        small = os.environ.get(SMALL_ENV, '') == '1'
    found = None
    if datasets:
        found = Path(mirror or os.environ.get(MIRROR_ENV)
                     or root.parent / 'shared' / 'data' / 'planetoid').expanduser()
        missing = [f'ind.{name.lower()}.x' for name in datasets
                   if not (found / f'ind.{name.lower()}.x').is_file()]
        if missing:
            raise FileNotFoundError(
                f"the Planetoid mirror {found} lacks {', '.join(missing)}: these notebooks "
                f"run offline from a folder holding the raw ind.<name>.* files; set "
                f"{MIRROR_ENV} to that folder (default: ../shared/data/planetoid from the "
                f"repository root {root})")
    work = Path(tempfile.mkdtemp(prefix='gat_pyg_notebook_'))
    data_root = Path(os.environ[ROOT_ENV]) if os.environ.get(ROOT_ENV) else work / 'data'
    return NotebookSettings(small=small, root=root, mirror=found, data_root=data_root,
                            work=work,
                            docs_figures=None if small else root / 'docs' / 'figures')
