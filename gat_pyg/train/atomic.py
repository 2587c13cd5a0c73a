"""Atomic file writes: a reader (or a resumed run) sees a whole file or none, never half of one.

Each writer fills a temporary file in the target's folder (same file system, so the final
``os.replace`` is an atomic rename) and renames it over the target only once it is complete.
"""
import csv
import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, IO, Mapping, Sequence, Union

import torch

PathLike = Union[str, os.PathLike]


def atomic_write(path: PathLike, write: Callable[[IO[bytes]], None]) -> None:
    """Call ``write(f)`` on a temporary binary file beside ``path``, then rename it to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f'.{path.name}.', suffix='.tmp')
    try:
        with os.fdopen(fd, 'wb') as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def atomic_write_text(path: PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    atomic_write(path, lambda f: f.write(text.encode('utf-8')))


def atomic_write_json(path: PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    atomic_write_text(path, json.dumps(obj, indent=2) + '\n')


def atomic_write_csv(path: PathLike, header: Sequence[str],
                     rows: Sequence[Mapping[str, Any]]) -> None:
    """Write ``rows`` (dicts keyed by ``header``) as CSV to ``path`` atomically."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(header), lineterminator='\n')
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, buffer.getvalue())


def atomic_torch_save(obj: Any, path: PathLike) -> None:
    """``torch.save(obj, path)`` atomically."""
    atomic_write(path, lambda f: torch.save(obj, f))
