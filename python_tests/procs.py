"""Child processes of the tests, every one bounded.

``run`` takes ``subprocess.run``'s common arguments. The child starts in a process group of its
own; when ``timeout`` passes (``subprocess.TimeoutExpired``, with what it printed so far) or the
wait is interrupted (pytest-timeout's per-test limit, Ctrl-C), the child and every process below
it are killed (torchrun starts its workers in sessions of their own, so a group is not enough),
and whatever of its group is left when it ends is killed too: no child outlives its test.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

DEFAULT_TIMEOUT = 900  # seconds; the slowest child of the suite (a pipeline run) takes a few minutes


def descendants(pid: int) -> list[int]:
    """Every process below ``pid``, from /proc."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def kill_tree(proc: subprocess.Popen) -> None:
    """SIGKILL ``proc``, everything below it and its process group, then reap it."""
    for pid in [proc.pid, *descendants(proc.pid)]:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    _kill_group(proc)
    proc.wait()


def run(cmd, *, timeout: float = DEFAULT_TIMEOUT, check: bool = False, capture_output: bool = False,
        input: str | bytes | None = None, stdout=None, stderr=None, **kwargs) -> subprocess.CompletedProcess:
    if capture_output:
        stdout = stderr = subprocess.PIPE
    if input is not None:
        kwargs["stdin"] = subprocess.PIPE
    proc = subprocess.Popen(cmd, stdout=stdout, stderr=stderr, start_new_session=True, **kwargs)
    try:
        out, err = proc.communicate(input, timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_tree(proc)
        out, err = proc.communicate()
        raise subprocess.TimeoutExpired(cmd, timeout, out, err) from None
    except BaseException:
        kill_tree(proc)
        raise
    finally:
        _kill_group(proc)  # whatever the child left running
    result = subprocess.CompletedProcess(cmd, proc.returncode, out, err)
    if check:
        result.check_returncode()
    return result
