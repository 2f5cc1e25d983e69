"""How every command ends on bad input: one line ``error: ...`` on stderr and a documented exit code,
never a traceback unless ``NBP_DEBUG=1`` asks for one.

Exit codes: 0 done; 1 an error the command names (a bad option value, a missing, empty, truncated or
corrupt file, a config field, too many bad videos, a bounded wait that ran out); 2 a command line the
parser rejects (argparse's own code); 3 an unexpected failure (a bug: the line says so,
``NBP_DEBUG=1`` shows the traceback); 130 interrupted by Ctrl-C (training has saved a checkpoint and
said how to resume).
"""

from __future__ import annotations

import os
import sys
from typing import Callable

EXIT_ERROR, EXIT_USAGE, EXIT_BUG, EXIT_INTERRUPTED = 1, 2, 3, 130
DEBUG_ENV = "NBP_DEBUG"


def debug() -> bool:
    return os.environ.get(DEBUG_ENV, "") not in ("", "0")


def check_seconds(flag: str, value: float) -> float:
    """``value`` as a bound on a wait: a finite number of seconds > 0, else a ValueError naming ``flag``."""
    if not (value > 0 and value < float("inf")):
        raise ValueError(f"{flag} must be a number of seconds > 0, got {value}")
    return value


def one_line(message: object, limit: int = 2000) -> str:
    text = " ".join(str(message).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def run_command(main: Callable[[], object]) -> None:
    """Run a command's ``main`` and turn its failures into the exit codes above."""
    try:
        main()
    except SystemExit:
        raise
    except KeyboardInterrupt:
        if debug():
            raise
        sys.exit(EXIT_INTERRUPTED)
    except (ValueError, TypeError, FileNotFoundError, NotADirectoryError, PermissionError, IsADirectoryError,
            TimeoutError) as e:
        if debug():
            raise
        sys.exit(f"error: {one_line(e)}")  # printed on stderr, exit code 1 (EXIT_ERROR)
    except MemoryError:
        if debug():
            raise
        sys.exit("error: out of memory: lower the sizes asked for (videos, batch, frames)")
    except Exception as e:  # a failure no check foresaw: still one line, marked as a bug
        if debug():
            raise
        if _between_processes(e):
            sys.exit(f"error: between the processes: {one_line(e, 500)} (a peer process stopped, or a wait ran past "
                     "--dist-timeout)")
        print(f"error: unexpected {type(e).__name__}: {one_line(e, 500)} ({DEBUG_ENV}=1 shows where)", file=sys.stderr)
        sys.exit(EXIT_BUG)


def _between_processes(e: Exception) -> bool:
    """A failure of torch.distributed: a collective that timed out, a peer that closed its connection
    (gloo reports these as plain RuntimeErrors naming itself)."""
    dist = sys.modules.get("torch.distributed")
    if dist is None or not dist.is_available():
        return False
    if isinstance(e, dist.DistError):
        return True
    text = str(e).lower()
    return (isinstance(e, RuntimeError) and dist.is_initialized()
            and any(mark in text for mark in ("gloo", "nccl", "connection closed by peer", "connection reset")))
