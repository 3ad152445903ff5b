"""Cluster sessions as notebook users type them, in real kernels over the Jupyter protocol."""
from __future__ import annotations

import pytest

from kernel_driver import Kernel

pytestmark = [pytest.mark.kernel, pytest.mark.timeout(240)]


def loaded():
    kernel = Kernel().start()
    result = kernel.run("%load_ext jobmagics")
    assert result.ok, result.stderr
    return kernel


def one_line_usage_error(result, start):
    assert not result.errors, result.errors
    assert result.stderr.startswith("UsageError: " + start), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_the_magics_on_a_cluster_session(dask_cluster):
    kernel = loaded()
    try:
        opened = kernel.run("C = %%new_session --cluster %s --name C" % dask_cluster.address)
        assert opened.ok, opened.stderr
        listed = kernel.run("%get_session C")
        assert listed.ok and "Cluster" in listed.text and dask_cluster.address in listed.text
        assert kernel.run("%start_job --session C --name hello print('hi'); 1 + 1").ok
        assert kernel.run("%wait_job --session C hello").ok
        kept = kernel.run("%receive_job --session C --keep hello")
        assert kept.ok and kept.stdout == "hi\n" and kept.text == "2", kept.stderr
        assert kernel.run("%receive_job --session C hello").stdout == "hi\n"
        assert kernel.run("%receive_job --session C hello").stdout == ""
        each = kernel.run("items = [1, 2, 3]\n%start_job --session C --foreach items --name each _ * 2\n"
                          "%wait_job --session C each\n%receive_job --session C each")
        assert each.ok and each.text == "[2, 4, 6]", each.stderr
        table = kernel.run("%get_job --session C --include-child-jobs")
        assert table.ok and table.text.count("tcp://127.0.0.1") >= 4  # children located on their workers
        invoked = kernel.run("%invoke --session C print('streamed')")
        assert invoked.ok and "streamed" in invoked.stdout, invoked.stderr
        as_job = kernel.run("j = %invoke --session C --as-job 5\n%wait_job $j\n%receive_job $j")
        assert as_job.ok and as_job.text == "5", as_job.stderr
        loop = kernel.run("%start_job --session C --name loop -- while True: pass")
        assert loop.ok, loop.stderr
        assert kernel.run("%stop_job --session C loop").ok
        assert "Stopped" in kernel.run("%get_job --session C loop").text
        one_line_usage_error(kernel.run("%new_session --cluster tcp://127.0.0.1:9"), "cannot reach the Dask scheduler")
        assert kernel.run("%remove_session C").ok
    finally:
        kernel.shutdown()


def test_disconnect_then_a_new_kernel_receives_every_line_once(dask_cluster, tmp_path):
    gate = tmp_path / "gate"
    first = loaded()
    second = None
    try:
        assert first.run("%%new_session --cluster %s --name left" % dask_cluster.address).ok
        started = first.run(
            "%%%%start_job --session left --name writer\n"
            "import os, time\n"
            "for i in range(5): print('before', i)\n"
            "while not os.path.exists(%r): time.sleep(0.01)\n"
            "for i in range(5): print('after', i)\n" % str(gate))
        assert started.ok, started.stderr
        got = ""
        while got.count("\n") < 5:  # the first kernel takes what was written so far
            got += first.run("%receive_job --session left writer").stdout
        assert got == "".join("before %d\n" % i for i in range(5))
        assert first.run("%disconnect_session left").ok
        first.shutdown()
        first = None
        gate.write_text("go")  # it writes on while no kernel is connected

        second = loaded()
        found = second.run("%%get_session --cluster %s" % dask_cluster.address)
        assert found.ok and "left" in found.text and "Disconnected" in found.text, found.stderr
        received = second.run("j = %receive_session left\nj")
        assert received.ok and "writer" in received.text, received.stderr
        assert second.run("%wait_job writer").ok
        rest = second.run("%receive_job writer")
        assert rest.ok and rest.stdout == "".join("after %d\n" % i for i in range(5)), rest.stdout
        assert second.run("%receive_job writer").stdout == ""
        assert second.run("%remove_session left").ok
        assert "left" not in second.run("%%get_session --cluster %s" % dask_cluster.address).text
    finally:
        for kernel in (first, second):
            if kernel is not None:
                kernel.shutdown()


def test_a_local_cluster_left_open_ends_with_the_kernel():
    """A ``--cluster local`` session not removed: the kernel's exit stops its running job and closes
    its LocalCluster, and no process the kernel started (the Dask workers among them) outlives it."""
    import psutil

    kernel = loaded()
    try:
        opened = kernel.run("import os\nL = %new_session --cluster local --name L\n"
                            "print(sorted(L.client.run(os.getpid).values()))")
        assert opened.ok, opened.stderr
        workers = [int(pid) for pid in opened.stdout.strip("[]\n").split(",")]
        running = kernel.run("loop = %start_job --session L --name loop -- while True: pass\n"
                             "while True:\n    seen = loop.activity  # read before the state: no change is missed\n"
                             "    if loop.state == 'Running':\n        break\n"
                             "    assert loop.wait_for_activity(seen, 60)", timeout=120)
        assert running.ok, running.stderr
        descendants = psutil.Process(kernel.pid).children(recursive=True)
        assert set(workers) <= {p.pid for p in descendants}
    finally:
        kernel.shutdown()
    _, alive = psutil.wait_procs(descendants, timeout=60)
    assert not alive, ["%d: %s" % (p.pid, " ".join(p.cmdline())) for p in alive]
