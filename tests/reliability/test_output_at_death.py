"""What a process job wrote right before its process died reaches the kernel, exactly once."""
from __future__ import annotations

import pytest

import jobmagics
from jobmagics import JobState

pytestmark = pytest.mark.timeout(120)

DEATHS = {
    "os._exit": "os._exit(3)",
    "segfault": "import ctypes; ctypes.string_at(0)",
    "SIGKILL": "os.kill(os.getpid(), signal.SIGKILL)",
}
WRITES = {
    "print": ("print('last words')", "stdout"),
    "print to stderr": ("print('last words', file=sys.stderr)", "stderr"),
    "print without a newline, flushed": ("print('last words', end='', flush=True)", "stdout"),
    "os.write": ("os.write(1, b'last words\\n')", "stdout"),
    "a child process": ("subprocess.run(['echo', 'last words'])", "stdout"),
}


@pytest.mark.parametrize("death", list(DEATHS))
@pytest.mark.parametrize("write", list(WRITES))
def test_the_last_output_before_the_process_dies_is_received_once(write, death):
    statement, stream = WRITES[write]
    code = "import os, signal, subprocess, sys\nprint('first')\n%s\n%s\n" % (statement, DEATHS[death])
    job = jobmagics.start_job(code, namespace={})
    assert job.wait(60), "job did not finish: %r" % job
    assert job.state == JobState.Failed, job.reason
    assert job.stdout.count("first") == 1
    assert getattr(job, stream).count("last words") == 1, (job.stdout, job.stderr)


def test_text_keeps_its_place_among_the_other_records():
    code = ("from jobmagics import emit\nimport sys\n"
            "for i in range(200):\n    print('a', i)\n    emit(i)\n    print('b', i, file=sys.stderr)\n")
    job = jobmagics.start_job(code, namespace={})
    assert job.wait(60) and job.state == JobState.Completed, job.reason
    order = [(r.stream, r.data) for r in job.records() if r.stream in ("stdout", "stderr", "output")]
    expected = []
    for i in range(200):
        expected += [("stdout", "a %d\n" % i), ("output", i), ("stderr", "b %d\n" % i)]
    assert order == expected
