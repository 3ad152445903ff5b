"""The session magics in a real kernel whose HOME holds the loopback sshd's config and keys."""
from __future__ import annotations

import os
import signal

import pytest

from kernel_driver import Kernel

pytestmark = [pytest.mark.kernel, pytest.mark.timeout(180)]

BARE = "/usr/bin/python3 -S"


@pytest.fixture
def kernel(ssh_home):
    with Kernel(env=ssh_home.env()) as k:
        assert k.run("%load_ext jobmagics").ok
        yield k


def test_new_session_invoke_and_remove_session(kernel):
    opened = kernel.run("s = %new_session --computer one two --name web --python \"/usr/bin/python3 -S\"\ns")
    assert opened.ok, opened.stderr
    table = kernel.run("%get_session").text.splitlines()
    assert table[0].split() == ["Id", "Name", "Transport", "ComputerName", "State", "Availability"]
    assert [row.split()[1:5] for row in table[2:]] == [["web-1", "SSH", "one", "Opened"], ["web-2", "SSH", "two", "Opened"]]
    kernel.run("factor = 7")
    result = kernel.run("%invoke --session web-1,web-2 print('hi'); factor * 6")
    assert result.ok, result.stderr
    assert sorted(result.stdout.splitlines()) == ["[one] hi", "[two] hi"]
    assert result.text == "[42, 42]"
    cell = kernel.run("%%invoke --session web-1 web-2 --as-job --job-name remote-sum\nsum(range(10))")
    assert cell.ok and "RemoteJob" in cell.text
    assert kernel.run("%wait_job remote-sum\n%receive_job remote-sum").text == "[45, 45]"
    assert kernel.run("%remove_session web-1 web-2").ok
    assert "Closed" not in kernel.run("%get_session").text


@pytest.mark.parametrize("line, message", [
    ("%new_session", "UsageError: new_session needs --computer HOST"),
    ('%new_session --computer 127.0.0.3 --python "/usr/bin/python3 -S"', "UsageError: cannot connect to 127.0.0.3"),
    ("%invoke 1", "UsageError: invoke needs --session S or --computer HOST"),
    ("%invoke --session nosuch 1", "UsageError: no session with id or name 'nosuch'"),
    ("%invoke --session nosuch 1 +", "UsageError: no session with id or name 'nosuch'"),
    ("%remove_session nosuch", "UsageError: no session with id or name 'nosuch'"),
    ("%disconnect_session nosuch", "UsageError: no session with id or name 'nosuch'"),
    ("%connect_session nosuch", "UsageError: no session with id or name 'nosuch' (here, detached on this machine"),
    ("%receive_session nosuch", "UsageError: no session with id or name 'nosuch' (here, detached on this machine"),
    ("%new_session --local --computer one", "UsageError: --local and --computer cannot be used together"),
    ("%new_session --local --idle-timeout 0", "UsageError: --idle-timeout must be a positive number of seconds"),
    ("%get_session --bogus", "UsageError: unrecognized arguments: --bogus"),
    ("%get_session --local --port 2222", "UsageError: --user, --port, --identity, --python and --accept-new"),
])
def test_session_mistakes_are_one_line(kernel, line, message):
    result = kernel.run(line)
    assert result.stderr.startswith(message), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert kernel.run("%get_session").text == "(no sessions)"


def test_unknown_host_key_is_refused_in_one_line_with_the_fingerprint(kernel, ssh_home):
    ssh_home.forget_hosts()
    result = kernel.run("%new_session --computer one --python \"/usr/bin/python3 -S\"")
    assert result.stderr.startswith("UsageError: the host key of one") and ssh_home.fingerprint in result.stderr


def test_job_magics_with_session_act_on_the_remote_registry(kernel):
    assert kernel.run('s = %new_session --computer one --python "/usr/bin/python3 -S"').ok
    kernel.run("limit = 4")
    started = kernel.run("%start_job --session $s --name there print('far away'); sum(range(limit))")
    assert started.ok, started.stderr
    assert "ThreadJob" in started.text and "localhost" in started.text
    assert "Completed" in kernel.run("%wait_job --session $s there").text
    kept = kernel.run("%receive_job --session $s there --keep")
    assert kept.stdout == "far away\n" and kept.text == "6"
    assert "there" in kernel.run("%get_job --session $s --has-more-data").text
    assert kernel.run("%get_job").text == "(no jobs)"  # nothing of it lives in this kernel
    assert kernel.run("%receive_job --session $s there").text == "6"
    refused = kernel.run("%receive_job --session $s nosuch")
    assert refused.stderr.startswith("UsageError: no job with id or name 'nosuch'")
    assert kernel.run("%remove_job --session $s there").ok
    assert kernel.run("%get_job --session $s").text == "(no jobs)"


def test_enter_session_runs_cells_there_until_exit(kernel):
    assert kernel.run('s = %new_session --computer one --name far --python "/usr/bin/python3 -S"').ok
    kernel.run("here = 'kernel'")
    entered = kernel.run("%enter_session far")
    assert entered.ok and "entered far on one" in entered.stdout
    first = kernel.run("import os\nwhere = os.environ['SSH_CONNECTION'].split()[2]\nprint('on', where)\nwhere")
    assert first.ok, first.stderr + first.error_text()
    assert first.stdout == "on 127.0.0.1\n" and first.text == "'127.0.0.1'"
    assert first.displays[0]["text/plain"] == "[in far on one]"
    assert kernel.run("where * 2").text == "'127.0.0.1127.0.0.1'"  # the namespace lives on in the session
    assert kernel.run("'here' in globals()").text == "False"  # the kernel's variables are not there
    started = kernel.run("j = %start_job --name inner sum(range(4))\nj.wait(30)\nj.location")
    assert started.text == "'localhost'"
    assert kernel.run("%receive_job inner").text == "6"
    refused = kernel.run("%time 1")
    assert "only job magics work in an entered session" in refused.stderr + refused.error_text()
    left = kernel.run("%exit_session")
    assert left.ok and "left far" in left.stdout
    assert kernel.run("here").text == "'kernel'"
    assert kernel.run("%get_job --session far inner").ok


def test_tab_completion_offers_session_names(kernel):
    assert kernel.run('%new_session --computer one --name completable-session --python "/usr/bin/python3 -S"').ok
    assert "completable-session" in kernel.complete("%enter_session compl")


def test_a_session_shows_as_a_live_widget_that_follows_its_state(kernel, sshd_server):
    from widget_mirror import WidgetMirror

    mirror = WidgetMirror(kernel.client)
    kernel.client.execute('%new_session --computer two --name shown --python "/usr/bin/python3 -S"')
    mirror.wait_for(lambda m: m.find("<b>shown</b>"))
    view = mirror.find("<b>shown</b>")[0]
    assert ">Opened</span>" in mirror.models[view]["value"] and "SSH to <b>two</b>" in mirror.models[view]["value"]
    sshd_server.kill_connections("two")
    mirror.wait_for(lambda m: ">Broken</span>" in m.models[view]["value"])
    assert "connection to two was lost" in mirror.models[view]["value"]
    assert kernel.run("%remove_session shown").ok  # it runs on over there until told to end


def test_a_cut_link_then_a_kernel_restart_loses_nothing(kernel, sshd_server, tmp_path):
    flag = str(tmp_path / "go")
    assert kernel.run('%new_session --computer two --name survivor --python "/usr/bin/python3 -S"').ok
    kernel.run("flag = %r" % flag)
    work = ("%%invoke --session survivor --as-job --job-name long\nimport os, time\nfor i in range(30):\n"
            "    if i == 10:\n        while not os.path.exists(flag):\n            time.sleep(0.02)\n"
            "    print('line', i, flush=True)\n'the end'")
    assert kernel.run(work).ok
    first = kernel.run("l = %get_job long\nl = l[0]\nwhile l.child_jobs[0].stdout.count(chr(10)) < 10:\n"
                       "    l.wait_for_activity(l.activity, 30)\n_ = %receive_job long")
    seen = [int(x.split()[1]) for x in first.stdout.splitlines()]
    sshd_server.kill_connections("two")
    assert kernel.run("while str(l.child_jobs[0].state) != 'Disconnected':\n"
                      "    l.wait_for_activity(l.activity, 30)").ok
    kernel.manager.restart_kernel()
    kernel.client.wait_for_ready(timeout=60)
    assert kernel.run("%load_ext jobmagics").ok
    listed = kernel.run("%get_session --computer two")
    assert "survivor" in listed.text and "Disconnected" in listed.text
    open(flag, "w").close()
    back = kernel.run("j = %receive_session survivor\n%wait_job $j\n_ = None")
    assert back.ok, back.stderr
    rest = kernel.run("%receive_job $j")
    assert rest.text == "'the end'"
    assert seen + [int(x.split()[1]) for x in rest.stdout.splitlines()] == list(range(30))
    assert kernel.run("%remove_session survivor").ok


def test_a_normal_kernel_shutdown_ends_its_ssh_sessions(ssh_home):
    from jobmagics.sessions import remote

    with Kernel(env=ssh_home.env()) as k:
        assert k.run("%load_ext jobmagics").ok
        assert k.run('%new_session --computer one --name ends-with-kernel --python "/usr/bin/python3 -S"').ok
    left = [s.name for s in remote.get_session(computer="one", python="/usr/bin/python3 -S")]
    assert "ends-with-kernel" not in left


def test_get_session_computer_takes_the_connection_flags(kernel, ssh_home):
    # Another kernel leaves a session; this one finds it by address, with no ~/.ssh/config entry to help.
    with Kernel(env=ssh_home.env()) as other:
        assert other.run("%load_ext jobmagics").ok
        assert other.run('%%new_session --computer two --name flagged --python "%s"' % BARE).ok
        assert other.run("%disconnect_session flagged").ok
    address = ssh_home.hosts["two"]
    try:
        listed = kernel.run('%%get_session --computer %s --port %d --user %s --python "%s"'
                            % (address, ssh_home.port, ssh_home.user, BARE))
        assert listed.ok, listed.stderr
        assert ["flagged", "SSH", address, "Disconnected"] in [row.split()[1:5] for row in listed.text.splitlines()]
        back = kernel.run("s = %connect_session flagged\n%invoke --session flagged 6 * 7")
        assert back.ok, back.stderr
        assert back.text == "42"
        assert kernel.run("%remove_session flagged").ok
    finally:  # if the test failed first, end the session it left (it would idle on for hours)
        from jobmagics.transport.local_socket import find_sessions

        for pid in [info["pid"] for _files, info in find_sessions() if info.get("name") == "flagged"]:
            os.kill(pid, signal.SIGTERM)


def test_get_session_names_a_missing_remote_python(kernel):
    listed = kernel.run("%get_session --computer one --python /nonexistent/python3")
    assert listed.stderr.startswith("UsageError: cannot list the sessions on one"), listed.stderr
    assert "has no /nonexistent/python3" in listed.stderr
    assert len(listed.stderr.strip().splitlines()) == 1
