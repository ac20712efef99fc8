"""Sharded zoom / render on a real single-node Slurm cluster (scripts/slurm/selftest.sh).

The self-test installs slurm-wlm + munge from Debian's mirror if needed, starts
the cluster (and stops it again if it was not running), submits the zoom array
and the dependent assembly job, cancels and resubmits one task, and checks the
results are bit-identical to single-process runs.  The jobs run this test's
Python (FRACTALTRAIN_PYTHON), so a virtualenv works.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SELFTEST = Path(__file__).resolve().parent.parent / "scripts" / "slurm" / "selftest.sh"


def skip_reason():
    if os.environ.get("FRACTALTRAIN_SKIP_SLURM") == "1":
        return "FRACTALTRAIN_SKIP_SLURM=1"
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "the Slurm self-test needs root (it installs packages and starts daemons)"
    if not Path("/etc/debian_version").exists() or shutil.which("apt-get") is None:
        return "the Slurm self-test needs Debian/Ubuntu (apt-get)"
    if shutil.which("bash") is None:
        return "bash not found"
    return None


@pytest.mark.slurm
@pytest.mark.skipif(skip_reason() is not None, reason=str(skip_reason()))
def test_slurm_selftest():
    env = dict(os.environ, FRACTALTRAIN_PYTHON=sys.executable)
    proc = subprocess.Popen(["bash", str(SELFTEST)], env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        out, _ = proc.communicate(timeout=900)
    except subprocess.TimeoutExpired:
        proc.terminate()  # SIGTERM: the self-test cancels its jobs and stops a cluster it started
        try:
            out, _ = proc.communicate(timeout=90)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
        pytest.fail(f"selftest.sh did not finish within 900 s; output:\n{out}")
    print(out)
    assert proc.returncode == 0, f"selftest.sh exited {proc.returncode}; output:\n{out}"
