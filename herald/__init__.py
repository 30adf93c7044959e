"""Herald: the domain. Nothing here imports Dagster.

One start-up fix lives here because every process imports this package first (the CLI, the
definitions, the web service): croniter (Dagster's vendored copy and the package itself) asks
``platform.architecture()`` at import whether Python is 32-bit, and the standard library answers
that by running the ``file`` command on the interpreter, a subprocess on every start. For the
running interpreter the answer is known without asking: the pointer size. Other executables
still go to ``file``.
"""

import platform as _platform
import struct as _struct
import sys as _sys

_architecture = _platform.architecture


def _interpreter_architecture(executable: str = _sys.executable, bits: str = "", linkage: str = "") -> tuple[str, str]:
    if executable == _sys.executable and _sys.platform.startswith("linux"):
        return bits or f"{_struct.calcsize('P') * 8}bit", linkage or "ELF"
    return _architecture(executable, bits, linkage)


_platform.architecture = _interpreter_architecture
