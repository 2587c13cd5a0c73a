"""Atomic file writes: a reader (or a resumed run) sees a whole file or none, never half of one.

Each writer fills a temporary file in the target's folder (same file system, so the final
``os.replace`` is an atomic rename) and renames it over the target only once it is complete.
Every writer takes the target path first: ``atomic_write_*(path, content)``.

The file gets the permissions of any file the user creates, ``0o666`` less the umask (0644
under the usual umask 022): ``tempfile.mkstemp`` would leave it readable by its owner alone.
"""
import csv
import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, IO, Mapping, Optional, Sequence, Union

PathLike = Union[str, os.PathLike]


def atomic_write(path: PathLike, write: Callable[[IO[bytes]], None],
                 check: Optional[Callable[[Path], None]] = None) -> None:
    """Call ``write(f)`` on a temporary binary file beside ``path``, then rename it to ``path``.

    Args:
        path: The target; its folder is created if missing.
        write: Fills the open temporary file.
        check: Called with the temporary file's path once it is complete and before the
            rename; raising there leaves ``path`` untouched (e.g. a checksum test).
            (default: ``None``)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f'.{path.name}.', suffix='.tmp')
    try:
        os.fchmod(fd, 0o666 & ~current_umask())
        with os.fdopen(fd, 'wb') as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        if check is not None:
            check(Path(tmp))
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def current_umask() -> int:
    """The process's umask, read without changing it where the system says it
    (``/proc/self/status``, Linux >= 4.7): ``os.umask`` can only be read by setting it, which
    would race with other threads creating files."""
    try:
        with open('/proc/self/status') as status:
            for line in status:
                if line.startswith('Umask:'):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


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


def atomic_torch_save(path: PathLike, obj: Any) -> None:
    """``torch.save(obj, path)`` atomically (the path first, as every writer here)."""
    import torch

    atomic_write(path, lambda f: torch.save(obj, f))
