"""File permissions that bind the test process even when it runs as root (as CI does here).

Root reads a file whatever its mode because the kernel grants it two capabilities,
CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH. :func:`file_modes_enforced` takes both out of the
calling thread's *effective* set for the length of a block (they stay permitted and are put
back after), so ``chmod 0`` refuses this thread as it refuses an ordinary user: the kernel's own
check, not a simulated error.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Iterator
from contextlib import contextmanager

_LINUX_CAPABILITY_VERSION_3 = 0x20080522
_CAP_DAC_OVERRIDE = 1
_CAP_DAC_READ_SEARCH = 2


class _Header(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _Data(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def _call(name: str, data: ctypes.Array) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    header = _Header(_LINUX_CAPABILITY_VERSION_3, 0)  # pid 0: this thread
    if getattr(libc, name)(ctypes.byref(header), data) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{name}: {os.strerror(errno)}")


@contextmanager
def file_modes_enforced() -> Iterator[None]:
    """Within the block, this thread cannot read a file its mode forbids it, even as root."""
    if os.geteuid() != 0:
        yield  # an ordinary user is bound by file modes already
        return
    saved = (_Data * 2)()
    _call("capget", saved)
    reduced = (_Data * 2)()
    ctypes.memmove(reduced, saved, ctypes.sizeof(saved))
    reduced[0].effective &= ~((1 << _CAP_DAC_OVERRIDE) | (1 << _CAP_DAC_READ_SEARCH))
    _call("capset", reduced)
    try:
        yield
    finally:
        _call("capset", saved)
