"""Run model-written Python in a bubblewrap sandbox, one program per process.

Model-written code is hostile. Each program runs under ``bwrap`` (Debian's ``bubblewrap``):

- new user, PID, network, IPC, UTS and cgroup namespaces: no network at all (not even
  loopback), no view of the worker's processes;
- a root file system that holds only ``/usr`` (read-only, for the interpreter and its standard
  library), a minimal ``/dev`` and ``/proc``, the program itself (read-only) and a private,
  size-capped tmpfs at ``/sandbox`` as the only writable place. The project, its settings, the
  secret key file, ``/etc`` (``/etc/passwd`` included) and the home directory are not there;
- an empty environment (no ``DATABASE_URL``, no API keys);
- resource limits set before ``bwrap`` starts and inherited by everything below it: CPU seconds,
  address space, file size, and a process count (run as an unprivileged user when the worker
  runs as root, because the kernel does not enforce the process count for root);
- a wall-clock timeout, after which the whole process group is killed; ``--die-with-parent``
  and the PID namespace take every descendant with it.

When the sandbox cannot run (no ``bwrap``, user namespaces disabled), :func:`run_python` raises
:class:`SandboxUnavailable`; nothing is ever run without it.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import re
import resource
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

MiB = 1024 * 1024


class SandboxUnavailable(RuntimeError):
    """The sandbox cannot run here; model-written code is refused rather than run without it."""


@dataclass(frozen=True)
class Limits:
    wall_seconds: float = 10.0
    cpu_seconds: int = 5
    memory_bytes: int = 512 * MiB
    processes: int = 16
    file_bytes: int = 1 * MiB
    scratch_bytes: int = 8 * MiB
    output_bytes: int = 16 * 1024


@dataclass(frozen=True)
class Outcome:
    """What one sandboxed program did. ``passed`` means it exited 0 within every limit."""

    passed: bool
    status: str  # passed | failed | timeout | cpu_limit | file_limit | memory | process_limit | killed
    reason: str
    returncode: int | None
    output: str
    wall_seconds: float


def _bwrap() -> str | None:
    return os.environ.get("STYLEGAP_BWRAP") or shutil.which("bwrap")


def _interpreter() -> str:
    """A Python under /usr (the only tree the sandbox can see); the venv's is not visible inside."""
    configured = os.environ.get("STYLEGAP_SANDBOX_PYTHON")
    candidates = [configured] if configured else ["/usr/bin/python3", "/usr/local/bin/python3"]
    for path in candidates:
        if path and path.startswith("/usr/") and os.access(path, os.X_OK):
            return path
    raise SandboxUnavailable(
        "no Python interpreter under /usr for the sandbox (set STYLEGAP_SANDBOX_PYTHON to one under /usr)"
    )


def _sandbox_uid() -> int | None:
    """Run as an unprivileged user when we are root: RLIMIT_NPROC is not enforced for root.

    The process count is per user, so each worker process takes its own uid (a base plus its pid):
    two sandboxes running at once in different workers never share, or exhaust, one count.
    """
    if os.geteuid() != 0:
        return None
    return int(os.environ.get("STYLEGAP_SANDBOX_UID_BASE", "200000")) + os.getpid() % 100_000


def _wait_for_leftovers(uid: int, seconds: float = 10.0) -> None:
    """A previous sandbox's PID namespace is torn down asynchronously: wait until its processes are gone."""
    deadline = time.monotonic() + seconds
    while _processes_of(uid) and time.monotonic() < deadline:
        time.sleep(0.05)


# prctl(2): a child subreaper adopts the orphans of its descendants instead of PID 1.
_PR_SET_CHILD_SUBREAPER = 36
_PR_GET_CHILD_SUBREAPER = 37
_subreaper_lock = threading.Lock()
_subreaper_runs = 0
_subreaper_set_here = False
_unreaped: set[int] = set()  # bwrap processes adopted but not gone yet when their run ended


@functools.cache
def _libc():
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


def _set_subreaper(on: bool) -> bool:
    libc = _libc()
    return libc is not None and libc.prctl(_PR_SET_CHILD_SUBREAPER, ctypes.c_ulong(int(on)), 0, 0, 0) == 0


@contextlib.contextmanager
def _adopting_orphans():
    """While sandboxes run, this process is a child subreaper, so it can reap the sandbox's orphan itself.

    bwrap's outer process exits as soon as it has the program's exit status, without waiting for its inner one
    (the PID namespace's init), which is then handed to the nearest subreaper, else to PID 1. A PID 1 that
    reaps only its own children (Celery or gunicorn as a container's command, without an init) left it a
    zombie, one more with every check: as the image's unprivileged user they piled up for good; as root each
    counted against the sandbox uid's process limit, so every check waited for it (10 s) and after a few no
    sandbox could start. The flag is set only for the runs' duration (orphans of anything else in the process
    are not taken in for longer), and left alone if something had set it before.
    """
    global _subreaper_runs, _subreaper_set_here
    with _subreaper_lock:
        if _subreaper_runs == 0:
            was, libc = ctypes.c_int(0), _libc()
            already = libc is not None and libc.prctl(_PR_GET_CHILD_SUBREAPER, ctypes.byref(was), 0, 0, 0) == 0
            _subreaper_set_here = not (already and was.value) and _set_subreaper(True)
        _subreaper_runs += 1
    try:
        yield
    finally:
        with _subreaper_lock:
            _subreaper_runs -= 1
            if _subreaper_runs == 0 and _subreaper_set_here:
                _set_subreaper(False)
                _subreaper_set_here = False


def _reap(pids, seconds: float = 0.0) -> None:
    """Reap those of ``pids`` that are this process's children, waiting up to ``seconds`` for them to exit;
    the ones still running then are kept in ``_unreaped`` for the next run to reap."""
    deadline = time.monotonic() + seconds
    pending = set(pids)
    while pending:
        for pid in list(pending):
            try:
                if os.waitpid(pid, os.WNOHANG)[0] == pid:
                    pending.discard(pid)
            except ChildProcessError:  # not ours (no subreaper here, or reaped already)
                pending.discard(pid)
        if not pending or time.monotonic() >= deadline:
            break
        time.sleep(0.005)
    _unreaped.difference_update(set(pids) - pending)
    _unreaped.update(pending)


_CHILD_PID = re.compile(rb'"child-pid"\s*:\s*(\d+)')


def _processes_of(uid: int) -> int:
    count = 0
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                if entry.stat().st_uid == uid:
                    count += 1
            except OSError:
                continue
    return count


def _root_links() -> list[str]:
    """Recreate /bin, /lib, /lib64, /sbin inside: symlinks into /usr on merged-/usr systems."""
    args: list[str] = []
    for name in ("bin", "lib", "lib64", "sbin"):
        host = Path("/") / name
        if host.is_symlink():
            args += ["--symlink", os.readlink(host), f"/{name}"]
        elif host.is_dir():
            args += ["--ro-bind", str(host), f"/{name}"]
    return args


def _prologue(started_fd: int) -> str:
    """What the interpreter runs first: one byte on ``started_fd`` (then closed, out of the program's reach),
    then /program.py as ``__main__``. No byte means the program never ran: bwrap failed in its child
    after reporting it, or the interpreter could not start."""
    return (
        f"import os; os.write({started_fd}, b'1'); os.close({started_fd}); del os; "
        "exec(compile(open('/program.py', 'rb').read(), '/program.py', 'exec'))"
    )


def _command(program_fd: int, status_fd: int, started_fd: int, interpreter: str, limits: Limits) -> list[str]:
    bwrap = _bwrap()
    if not bwrap:
        raise SandboxUnavailable("bubblewrap (bwrap) is not installed; install the Debian package `bubblewrap`")
    return [
        bwrap,
        "--unshare-all",
        "--die-with-parent",
        "--new-session",
        "--json-status-fd", str(status_fd),
        "--clearenv",
        "--setenv", "PATH", "/usr/local/bin:/usr/bin:/bin",
        "--setenv", "HOME", "/sandbox",
        "--setenv", "TMPDIR", "/sandbox",
        "--setenv", "PYTHONDONTWRITEBYTECODE", "1",
        "--ro-bind", "/usr", "/usr",
        *_root_links(),
        "--proc", "/proc",
        "--dev", "/dev",
        "--size", str(limits.scratch_bytes),
        "--tmpfs", "/sandbox",
        "--ro-bind-data", str(program_fd), "/program.py",
        "--chdir", "/sandbox",
        "--remount-ro", "/",
        "--",
        interpreter, "-I", "-B", "-c", _prologue(started_fd),
    ]  # fmt: skip


def _limit_resources(limits: Limits, processes: int):
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_seconds, limits.cpu_seconds + 1))
        resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))
        resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_bytes, limits.file_bytes))
        resource.setrlimit(resource.RLIMIT_NPROC, (processes, processes))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    return apply


_SIGNALS = {
    signal.SIGXCPU: ("cpu_limit", "CPU time limit reached"),
    signal.SIGXFSZ: ("file_limit", "file size limit reached"),
}


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""


def _outcome(returncode: int | None, output: str, timed_out: bool, wall: float, limits: Limits) -> Outcome:
    if timed_out:
        return Outcome(False, "timeout", f"timed out after {limits.wall_seconds:g} s", returncode, output, wall)
    if returncode == 0:
        return Outcome(True, "passed", "", 0, output, wall)
    last = _last_line(output)
    if returncode is not None and returncode < 0:
        sig = signal.Signals(-returncode)
        status, reason = _SIGNALS.get(sig, ("killed", f"killed by {sig.name}"))
        return Outcome(False, status, reason, returncode, output, wall)
    if returncode is not None and returncode > 128 and returncode - 128 in _SIGNALS:
        status, reason = _SIGNALS[signal.Signals(returncode - 128)]
        return Outcome(False, status, reason, returncode, output, wall)
    if last.startswith("BlockingIOError: [Errno 11]"):
        return Outcome(False, "process_limit", f"process limit reached ({last})", returncode, output, wall)
    if last.startswith("MemoryError"):
        return Outcome(False, "memory", "memory limit reached (MemoryError)", returncode, output, wall)
    return Outcome(False, "failed", last or f"exit status {returncode}", returncode, output, wall)


def run_python(source: str, limits: Limits | None = None) -> Outcome:
    """Run ``source`` as a Python program in the sandbox; never raises for what the program does.

    Raises SandboxUnavailable when the sandbox itself cannot start: bwrap reports no child, or its child
    fails before the program runs (the prologue never writes its byte).
    """
    limits = limits or Limits()
    interpreter = _interpreter()
    with _adopting_orphans():
        return _run_adopting_orphans(source, limits, interpreter)


def _run_adopting_orphans(source: str, limits: Limits, interpreter: str) -> Outcome:
    _reap(set(_unreaped))
    uid = _sandbox_uid()
    if uid is not None:
        _wait_for_leftovers(uid)
    processes = limits.processes + (_processes_of(os.geteuid()) if uid is None else 0)
    program_r, program_w = os.pipe()
    status_r, status_w = os.pipe()
    started_r, started_w = os.pipe()
    try:
        command = _command(program_r, status_w, started_w, interpreter, limits)
        with tempfile.TemporaryFile() as out:
            if uid is not None:
                os.fchown(out.fileno(), uid, -1)
            started = time.monotonic()
            try:
                proc = subprocess.Popen(  # noqa: S603 - a fixed command; the program comes through a pipe
                    command,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    pass_fds=(program_r, status_w, started_w),
                    preexec_fn=_limit_resources(limits, processes),
                    start_new_session=True,
                    **({"user": uid, "group": uid, "extra_groups": []} if uid is not None else {}),
                )
            except OSError as exc:
                raise SandboxUnavailable(f"the sandbox failed to start: {exc}") from exc
            for fd in (program_r, status_w, started_w):
                os.close(fd)
            program_r = status_w = started_w = -1
            # A sandbox that exits before reading its program breaks the pipe at the write or at the close.
            with contextlib.suppress(BrokenPipeError), os.fdopen(program_w, "wb") as pipe:
                program_w = -1
                pipe.write(source.encode())
            timed_out = False
            try:
                proc.wait(timeout=limits.wall_seconds)
            except subprocess.TimeoutExpired:
                timed_out = True
                _kill_group(proc)
            wall = time.monotonic() - started
            out.seek(0)
            output = out.read(limits.output_bytes).decode("utf-8", "replace")
        with os.fdopen(status_r, "rb") as status:
            status_r = -1
            child = _CHILD_PID.search(status.read(4096))
        started_child = child is not None
        if child:
            _reap({int(child.group(1))}, seconds=10.0)  # the inner bwrap, adopted when the outer one exited
        os.set_blocking(started_r, False)  # a leftover holding the pipe's other end must not stall us
        try:
            program_ran = os.read(started_r, 1) == b"1"
        except BlockingIOError:
            program_ran = False
        if not started_child or (not program_ran and not timed_out):
            raise SandboxUnavailable(f"the sandbox failed to start: {_last_line(output) or proc.returncode}")
        return _outcome(proc.returncode, output, timed_out, wall, limits)
    finally:
        for fd in (program_r, program_w, status_r, status_w, started_r, started_w):
            if fd >= 0:
                os.close(fd)


def _kill_group(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


@functools.cache
def sandbox_problem() -> str | None:
    """Why the sandbox cannot run here, or None when it can (probed once per process)."""
    try:
        outcome = run_python("print('ok')", Limits(wall_seconds=30))
    except SandboxUnavailable as exc:
        return str(exc)
    if not outcome.passed or outcome.output.strip() != "ok":
        return f"the sandbox probe failed: {outcome.reason or outcome.output.strip()[:200]}"
    return None


def require_sandbox() -> None:
    """Raise SandboxUnavailable with the reason unless the sandbox works on this machine."""
    problem = sandbox_problem()
    if problem:
        raise SandboxUnavailable(f"model-written code is never run unsandboxed: {problem}")
