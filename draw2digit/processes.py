"""Running a child server (Voila) so that Ctrl+C or SIGTERM stops it and everything it started."""

from __future__ import annotations

import contextlib
import signal
import subprocess


def run_until_stopped(proc: subprocess.Popen, grace: float = 10.0) -> int:
    """Wait for ``proc``; on Ctrl+C or SIGTERM stop it *and everything it started*, then return.

    Voila leaves its kernels running when it is terminated, so they are found
    (while they still have a parent) and stopped too: nothing outlives the command.
    """
    import psutil  # installed with the notebooks extra, which is what starts children

    def stop(signum, _frame):
        raise KeyboardInterrupt

    # SIGINT too: a shell starts background jobs with SIGINT ignored, and Ctrl+C must still stop everything
    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        return proc.wait()
    except KeyboardInterrupt:
        try:
            family = psutil.Process(proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            family = []
        proc.terminate()
        try:
            proc.wait(timeout=grace)
        except Exception:
            proc.kill()
        for child in family:
            with contextlib.suppress(psutil.NoSuchProcess):
                child.terminate()
        _, alive = psutil.wait_procs(family, timeout=grace)
        for child in alive:
            with contextlib.suppress(psutil.NoSuchProcess):
                child.kill()
        return 0
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
