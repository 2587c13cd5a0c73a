"""Lazy package attributes (PEP 562), so that ``import gat_pyg.cli`` does not import torch.

``gat-pyg --help`` and argument errors must answer in well under a second, and importing torch
and PyG alone takes seconds. A package ``__init__`` therefore names what it exports and where it
lives; each name (and each subpackage) is imported the first time it is used, then cached in
the package's namespace, so later lookups cost nothing and ``from gat_pyg import GATConv`` works
as before.
"""
import importlib
import sys
import types
from typing import Callable, Dict, Iterable, List, Tuple


class LazyPackage(types.ModuleType):
    """A package whose attribute of the same name as one of its submodules stays the attribute.

    After loading a submodule the import system sets ``package.<submodule> = module``. Where
    the package exports a name from that very submodule (``gat_pyg.train.reproduce``, the
    function in ``gat_pyg/train/reproduce.py``), an eager ``__init__`` rebound the name to the
    function right after; lazily, the module would win whenever the submodule happened to be
    imported first. This keeps the function, whatever the import order.
    """

    def __setattr__(self, name: str, value) -> None:
        where = self.__dict__.get('_lazy_where', {})
        if isinstance(value, types.ModuleType) and where.get(name) == value.__name__:
            value = getattr(value, name)
        super().__setattr__(name, value)


def lazy_exports(package: str, exports: Dict[str, Iterable[str]],
                 submodules: Iterable[str] = ()) -> Tuple[List[str], Callable, Callable]:
    """``__all__``, ``__getattr__`` and ``__dir__`` for ``package``.

    Args:
        package: The package's ``__name__``.
        exports: ``{module: names}``: each name is ``module.name``.
        submodules: Subpackages reachable as attributes (``gat_pyg.nn``) without an import.
    """
    where = {name: module for module, names in exports.items() for name in names}
    submodules = set(submodules)
    package_module = sys.modules[package]
    package_module.__class__ = LazyPackage
    package_module._lazy_where = where
    namespace = package_module.__dict__

    def __getattr__(name: str):
        if name in where:
            value = getattr(importlib.import_module(where[name]), name)
        elif name in submodules:
            value = importlib.import_module(f'{package}.{name}')
        else:
            raise AttributeError(f'module {package!r} has no attribute {name!r}')
        namespace[name] = value
        return value

    def __dir__() -> List[str]:
        return sorted(set(namespace) | set(where) | submodules)

    return list(where), __getattr__, __dir__
