"""What a hostile world does to a batch job, handled in one place (issue 12's fault corpus).

- :func:`store_lock`: one writer at a time per HDF5 store (an ``fcntl`` lock file beside it), so two
  ``prepare`` runs into one store can never lose each other's videos;
- :func:`remove_stale_temporaries`: the ``.<name>.*.tmp`` files of writers that were killed
  (:func:`hawkeye.io.atomic_path` names its temporary files so that they can be told apart);
- :func:`die_with_parent`: a worker or trainer process that must not outlive the process that
  started it (``kill -9`` of ``prepare`` or of the job id ``launch`` printed);
- :func:`os_error_message`: the message for a full disk, a read-only or forbidden folder, naming
  the file and what to do (text files in the wrong encoding: :func:`hawkeye.io.check_text_file`).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import logging
import os
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1  # linux/prctl.h
_NO_LOCKS = (errno.ENOSYS, errno.ENOLCK, errno.EOPNOTSUPP, errno.EINVAL)  # flock unsupported
# Locks this process holds, path -> depth: prepare holds its store's lock for the whole run and
# write_store takes it again for each flush (a second flock on a new descriptor would deadlock).
_HELD: dict[Path, int] = {}


class StoreBusyError(RuntimeError):
    """Another process holds the writer lock of a store (the message names it and the lock)."""


def lock_path(store: str | os.PathLike[str]) -> Path:
    """The lock file beside ``store``: ``data/x.h5`` -> ``data/.x.h5.lock`` (never deleted: removing
    a lock file while someone waits on it would let two writers in)."""
    store = Path(store)
    return store.with_name(f".{store.name}.lock")


@contextlib.contextmanager
def store_lock(store: str | os.PathLike[str], wait: bool = True) -> Iterator[None]:
    """Hold the exclusive writer lock of ``store`` for the block (re-entrant in one process).

    ``wait=True`` blocks until the other writer is done (a store write takes seconds);
    ``wait=False`` raises :class:`StoreBusyError` at once, naming the holder. While the lock is
    held no other writer of this store is alive, so the temporary files of its killed writers are
    removed. ``OSError`` (read-only folder, no permission) propagates for the caller to report; a
    file system without locks (Lustre mounted without ``flock``) gets a warning, not a refusal.
    """
    path = lock_path(store).absolute()
    if path in _HELD:
        _HELD[path] += 1
        try:
            yield
        finally:
            _HELD[path] -= 1
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with _open_lock_file(path) as handle:
        locked = _acquire(handle, path, store, wait)
        if handle.writable():  # who holds it, for the message a second writer gets
            handle.seek(0)
            handle.truncate()
            handle.write(f"pid {os.getpid()} on {socket.gethostname()} since {time.ctime()}\n")
            handle.flush()
        _HELD[path] = 1
        try:
            if locked:
                remove_stale_temporaries(Path(store), any_writer=True)
            yield
        finally:
            del _HELD[path]
            if locked:
                fcntl.flock(handle, fcntl.LOCK_UN)


def _open_lock_file(path: Path) -> Any:
    """The lock file for writing, or for reading only when another user created it without
    group write permission (flock works on either; only the holder note is then not written)."""
    try:
        return open(path, "a+")
    except PermissionError:
        if not path.exists():
            raise
        return open(path)


def _acquire(handle: Any, path: Path, store: str | os.PathLike[str], wait: bool) -> bool:
    """Take the lock on ``handle``; False when the file system cannot lock (then unprotected)."""
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        holder = _holder(path)
        if not wait:
            raise StoreBusyError(
                f"{Path(store)}: another writer holds this store ({holder}, lock file {path}); "
                f"wait for it to finish, then run again (finished videos are kept)") from None
        log.warning("%s: waiting for the writer lock held by %s", store, holder)
        fcntl.flock(handle, fcntl.LOCK_EX)
        return True
    except OSError as error:
        if error.errno not in _NO_LOCKS:
            raise
        log.warning("%s: the file system cannot lock files (%s); concurrent writers of this "
                    "store are not kept apart: run one at a time", path, error.strerror)
        return False


def _holder(path: Path) -> str:
    try:
        return path.read_text().strip() or "a process that wrote nothing yet"
    except OSError:
        return "unknown process"


def temporary_prefix(path: Path) -> str:
    """Name prefix of :func:`hawkeye.io.atomic_path`'s temporary file for ``path`` in this process:
    ``.<name>.<host>.<pid>.`` (host and pid tell a killed writer's leftovers from a live one's)."""
    return f".{path.name}.{_host()}.{os.getpid()}."


def remove_stale_temporaries(path: Path, any_writer: bool = False) -> list[Path]:
    """Delete the ``.<name>.*.tmp`` files beside ``path`` left by killed writers; return them.

    A file is stale when its writer (host and pid in its name) is a dead process on this host, or,
    with ``any_writer`` (the caller holds the store's lock, so no writer of it is alive), when it
    existed before now. Files of other hosts are left alone otherwise: their pids mean nothing here.
    """
    host, now, removed = _host(), time.time(), []
    if not path.parent.is_dir():
        return removed
    for tmp in path.parent.glob(f".{path.name}.*.tmp"):
        # "<host>.<pid>.<random>.tmp", or "<random>.tmp" (written before names carried a pid)
        parts = tmp.name[len(path.name) + 2:].split(".")
        if len(parts) not in (2, 4):  # another file's, e.g. ".x.h5.*" beside a store named "x"
            continue
        pid = int(parts[1]) if len(parts) == 4 and parts[1].isdigit() else None
        dead_here = parts[0] == host and pid is not None and pid != os.getpid() and not _alive(pid)
        try:
            if dead_here or (any_writer and tmp.stat().st_mtime < now):
                tmp.unlink()
                removed.append(tmp)
        except FileNotFoundError:  # its writer finished meanwhile
            continue
    if removed:
        log.info("removed %d temporary file(s) of killed writers: %s", len(removed),
                 ", ".join(p.name for p in removed))
    return removed


def _host() -> str:
    """This machine's short name (no dots: it is one field of a temporary file's name)."""
    return socket.gethostname().split(".")[0] or "localhost"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True


def die_with_parent(parent_pid: int | None = None) -> None:
    """Ask Linux to SIGKILL this process when its parent dies (``PR_SET_PDEATHSIG``).

    ``parent_pid``: the parent this process was started by; if it is already gone (it died before
    this call), exit now. A no-op where ``prctl`` does not exist (not Linux).
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        prctl = libc.prctl
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        return
    if prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:  # pragma: no cover
        log.warning("prctl(PR_SET_PDEATHSIG) failed: %s", os.strerror(ctypes.get_errno()))
        return
    if parent_pid is not None and os.getppid() != parent_pid:
        os._exit(1)  # the parent died before the request took effect


def os_error_message(error: OSError, what: str) -> str:
    """One line for an ``OSError`` while writing ``what``: the file, the cause, what to do."""
    where = error.filename or what
    hint = {
        errno.ENOSPC: "the disk is full: free space or write elsewhere",
        errno.EDQUOT: "the disk quota is exceeded: free space or write elsewhere",
        errno.EROFS: "the file system is read-only: write elsewhere",
        errno.EACCES: "no permission: fix the folder's permissions or write elsewhere",
        errno.EPERM: "not permitted: fix the folder's permissions or write elsewhere",
    }.get(error.errno or -1, "check the path and the disk")
    cause = error.strerror or str(error)
    return f"cannot write {what} ({where}: {cause}); {hint}"
