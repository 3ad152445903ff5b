"""Sessions and remote jobs against a real OpenSSH server on 127.0.0.1 and 127.0.0.2."""
from __future__ import annotations

import os

import pytest

import jobmagics
from jobmagics import JobState
from jobmagics.sessions import remote
from jobmagics.core.states import SessionState
from jobmagics.errors import JobError
from jobmagics.transport.ssh import HostKeyError, SSHError

BARE = "/usr/bin/python3 -S"  # neither jobmagics nor dill is importable there


@pytest.fixture
def one(ssh_home):
    session = remote.new_session("one", python=BARE, name="one-session")
    yield session
    remote.remove_session(session)


def test_a_session_runs_code_with_the_agent_sent_over_the_connection(one):
    assert one.state == SessionState.Opened and one.transport == "SSH" and one.computer_name == "one"
    assert one.hello["python"].startswith("3.") and one.hello["has_dill"]  # dill was sent: it is not installed there
    value = remote.invoke("import sys, jobmagics\nsys.flags.no_site, jobmagics.__doc__", session=one)
    assert value[0] == 1 and "stand-in" in value[1]  # a bare Python: jobmagics there is the agent's stand-in
    assert remote.get_session("one-session") == [one]


def test_notebook_variables_and_functions_travel_to_the_remote(one):
    namespace = {"__name__": "__main__", "base": 3}
    exec("def scale(v):\n    return v * base", namespace)
    assert remote.invoke("scale(14)", session=one, namespace=namespace) == 42


def test_invoke_streams_output_and_tags_lines_with_the_computer(ssh_home, capsys):
    value = remote.invoke("print('hello')\nimport os\nos.environ['SSH_CONNECTION'].split()[2]",
                          computer=["one", "two"], python=BARE, namespace={})
    assert sorted(value) == ["127.0.0.1", "127.0.0.2"]
    out = capsys.readouterr().out
    assert "[one] hello\n" in out and "[two] hello\n" in out


def test_invoke_as_job_has_a_child_per_computer_and_an_error_fails_that_child_only(ssh_home):
    code = ("import os\nfrom jobmagics import emit\nwhere = os.environ['SSH_CONNECTION'].split()[2]\n"
            "if where == '127.0.0.2':\n    raise RuntimeError('broken on ' + where)\nemit(where)")
    job = remote.invoke(code, computer=["one", "two"], as_job=True, job_name="fan", python=BARE, namespace={})
    assert job.job_type == "RemoteJob" and job.name == "fan" and jobmagics.get_job("fan") == [job]
    assert job.wait(60)
    one, two = job.child_jobs
    assert (one.location, one.state) == ("one", JobState.Completed)
    assert (two.location, two.state) == ("two", JobState.Failed)
    assert job.state == JobState.Failed
    (error,) = two.error
    assert isinstance(error, JobError) and error.computer == "two"
    assert "raise RuntimeError('broken on ' + where)" in error.traceback  # the remote traceback
    assert "Error in job" in error._render_traceback_()[0] and "on two" in error._render_traceback_()[0]
    assert jobmagics.receive_job(job) == "127.0.0.1"
    job.remove()


def test_throttle_limit_keeps_the_rest_not_started(ssh_home, tmp_path):
    flag = str(tmp_path / "go")
    code = "import os, time\nwhile not os.path.exists(flag):\n    time.sleep(0.01)\n'done'"
    job = remote.invoke(code, computer=["one", "two"], as_job=True, throttle_limit=1, python=BARE,
                        namespace={"flag": flag})
    first, second = job.child_jobs
    while first.state != JobState.Running:
        first.wait_for_activity(first.activity, timeout=30)
    assert second.state == JobState.NotStarted and job.state == JobState.Running
    open(flag, "w").close()
    assert job.wait(60)
    assert [c.state for c in job.child_jobs] == [JobState.Completed, JobState.Completed]
    job.remove()


def test_stopping_a_remote_job_stops_its_children(ssh_home):
    job = remote.invoke("import time\nwhile True:\n    time.sleep(0.05)", computer=["one", "two"], as_job=True,
                        python=BARE, namespace={})
    for child in job.child_jobs:
        while child.state != JobState.Running:
            child.wait_for_activity(child.activity, timeout=30)
    job.stop()
    assert job.wait(30) and job.state == JobState.Stopped
    assert all(c.state == JobState.Stopped for c in job.child_jobs)
    job.remove()


def test_unknown_host_key_is_refused_with_its_fingerprint(ssh_home):
    ssh_home.forget_hosts()
    before = remote.get_session()
    with pytest.raises(HostKeyError) as caught:
        remote.new_session("one", python=BARE)
    message = str(caught.value)
    assert "is not known" in message and ssh_home.fingerprint in message and "--accept-new-host-key" in message
    assert remote.get_session() == before


def test_accept_new_host_key_accepts_and_remembers_a_new_key(ssh_home):
    ssh_home.forget_hosts()
    session = remote.new_session("one", python=BARE, accept_new_host_key=True)
    remote.remove_session(session)
    with open(ssh_home.known_hosts) as fh:
        assert "[127.0.0.1]:%d" % ssh_home.port in fh.read()
    session = remote.new_session("one", python=BARE)  # now known: no flag needed
    remote.remove_session(session)


def test_a_changed_host_key_is_refused_even_when_accepting_new_keys(ssh_home):
    ssh_home.change_host_key("one")
    with pytest.raises(HostKeyError) as caught:
        remote.new_session("one", python=BARE, accept_new_host_key=True)
    assert "CHANGED" in str(caught.value) and ssh_home.other_fingerprint in str(caught.value)


def test_an_unreachable_computer_is_a_clear_error_and_opens_nothing(ssh_home):
    before = remote.get_session()
    with pytest.raises(SSHError, match="cannot connect to 127.0.0.3"):  # nothing listens there
        remote.new_session(["one", "127.0.0.3"], python=BARE)
    assert remote.get_session() == before


def test_an_unreachable_computer_fails_only_its_child(ssh_home):
    job = remote.invoke("1", computer=["one", "nonexistent.invalid"], as_job=True, python=BARE, namespace={})
    assert job.wait(60)
    good, bad = job.child_jobs
    assert good.state == JobState.Completed
    assert bad.state == JobState.Failed and "nonexistent.invalid" in bad.reason
    job.remove()


def test_a_missing_remote_python_is_named(ssh_home):
    with pytest.raises(jobmagics.JobmagicsError, match="has no /nonexistent/python3"):
        remote.new_session("one", python="/nonexistent/python3")


def test_a_remote_python_that_ends_after_closing_its_output_has_its_exit_code_named(ssh_home):
    # Its output ends a second before its exit status comes: the kernel must wait for the status.
    lingering = "sh -c 'exec >&- 2>&-; sleep 1; exit 3' sh"
    with pytest.raises(jobmagics.JobmagicsError, match="exited with code 3"):
        remote.new_session("one", python=lingering)


def test_a_cut_link_leaves_the_job_disconnected_and_reconnecting_loses_nothing(ssh_home, sshd_server, tmp_path):
    flag = str(tmp_path / "go")
    session = remote.new_session("two", python=BARE)
    code = ("import os, time\nfor i in range(40):\n    if i == 20:\n        while not os.path.exists(flag):\n"
            "            time.sleep(0.02)\n    print('line', i, flush=True)\n'finished'")
    job = remote.invoke(code, session=session, as_job=True, namespace={"flag": flag})
    child = job.child_jobs[0]
    while child.stdout.count("\n") < 20:
        child.wait_for_activity(child.activity, timeout=30)
    first = [line for line in child.stdout.splitlines()]
    jobmagics.receive_job(job)  # taken here: must not come again
    sshd_server.kill_connections("two")  # the network goes away mid-job
    while child.state != JobState.Disconnected:
        child.wait_for_activity(child.activity, timeout=30)
    assert session.state == SessionState.Broken and "%connect_session" in session.reason
    open(flag, "w").close()  # the job goes on over there, with nobody connected
    remote.connect_session(session)
    assert session.state == SessionState.Opened
    assert job.wait(60) and child.state == JobState.Completed
    rest = child.stdout.splitlines()
    assert first + rest == ["line %d" % i for i in range(40)]  # every line exactly once
    assert child.output == ["finished"]
    remote.remove_session(session)
    job.remove()


def test_removing_a_session_stops_its_jobs(ssh_home):
    session = remote.new_session("one", python=BARE)
    job = remote.invoke("import time\nwhile True:\n    time.sleep(0.05)", session=session, as_job=True, namespace={})
    child = job.child_jobs[0]
    while child.state != JobState.Running:
        child.wait_for_activity(child.activity, timeout=30)
    remote.remove_session(session)
    assert job.wait(30) and child.state == JobState.Stopped
    assert session.state == SessionState.Closed
    job.remove()


def _add_alias(ssh_home, alias, extra):
    with open(ssh_home.config_path, "a") as fh:
        fh.write("\nHost %s\n    HostName 127.0.0.2\n    Port %d\n    User %s\n    IdentityFile %s\n"
                 "    IdentitiesOnly yes\n%s\n" % (alias, ssh_home.port, ssh_home.user, ssh_home.key, extra))


def test_proxy_jump_from_the_ssh_config_is_honoured(ssh_home, sshd_server):
    _add_alias(ssh_home, "two-via-one", "    ProxyJump one")
    session = remote.new_session("two-via-one", python=BARE)
    try:
        # The hop's connection reaches 127.0.0.2 from the jump host, not from this client directly.
        assert remote.invoke("import os\nos.environ['SSH_CONNECTION'].split()[2]", session=session,
                             namespace={}) == "127.0.0.2"
    finally:
        remote.remove_session(session)


def test_proxy_command_from_the_ssh_config_is_honoured(ssh_home):
    relay = ("%s -c \"import socket,sys,threading;s=socket.create_connection(('%%h',%%p));"
             "threading.Thread(target=lambda:[sys.stdout.buffer.write(d) or sys.stdout.flush() "
             "for d in iter(lambda:s.recv(65536),b'')],daemon=True).start();"
             "[s.sendall(d) for d in iter(lambda:sys.stdin.buffer.read1(65536),b'')]\"") % "/usr/bin/python3"
    _add_alias(ssh_home, "two-by-command", "    ProxyCommand " + relay)
    session = remote.new_session("two-by-command", python=BARE)
    try:
        assert remote.invoke("6 * 7", session=session, namespace={}) == 42
    finally:
        remote.remove_session(session)


def test_a_proxy_command_is_ended_and_reaped_and_its_pipes_closed_with_its_connection():
    from jobmagics.transport.ssh import _ProxyCommand

    proxy = _ProxyCommand("cat")  # runs until its stdin closes or it is signalled
    proxy.close()
    assert proxy.process.returncode is not None  # reaped, not left for the collector to warn about
    assert all(pipe.closed for pipe in (proxy.process.stdin, proxy.process.stdout, proxy.process.stderr))
    proxy.close()  # a second close (paramiko's transport may close it again) is harmless


def test_a_too_old_remote_python_is_named(ssh_home, tmp_path):
    # Stands in for an old interpreter: it answers the bootstrap as Python 3.6 would.
    fake = tmp_path / "python3.6"
    fake.write_text("#!/bin/sh\n/usr/bin/python3 -S -c 'import sys; sys.version_info = (3, 6, 0); "
                    "exec(sys.argv[1])' \"$3\"\n")
    fake.chmod(0o755)
    with pytest.raises(jobmagics.JobmagicsError, match=r"this Python \(3.6\) is too old for the agent"):
        remote.new_session("one", python=str(fake))


def test_a_broken_session_refuses_new_work_in_one_line(ssh_home, sshd_server):
    session = remote.new_session("two", python=BARE)
    sshd_server.kill_connections("two")
    session.link.ended.wait(30)
    with pytest.raises(jobmagics.errors.UserInputError, match="session Session[0-9]+ is Broken: the connection to two"):
        remote.invoke("1", session=session, namespace={})
    remote.remove_session(session)


def test_naming_the_job_asks_for_a_job_and_a_failed_child_gives_the_parent_its_reason(ssh_home):
    job = remote.invoke("raise ValueError('nope')", computer="one", job_name="named", python=BARE, namespace={})
    assert jobmagics.get_job("named") == [job]
    assert job.wait(60) and job.state == JobState.Failed
    assert job.reason == "one: ValueError: nope"
    assert job.child_jobs[0].error[0]._render_traceback_()[0] == "Error in job %s on one:" % job.child_jobs[0].name
    job.remove()


def test_an_ssh_session_can_be_disconnected_on_purpose_and_connected_again(ssh_home, tmp_path):
    flag = str(tmp_path / "go")
    session = remote.new_session("one", python=BARE)
    try:
        job = remote.invoke("import os, time\nwhile not os.path.exists(flag):\n    time.sleep(0.02)\n'after'",
                            session=session, as_job=True, namespace={"flag": flag})
        child = job.child_jobs[0]
        while child.state != JobState.Running:
            child.wait_for_activity(child.activity, timeout=30)
        remote.disconnect_session(session)
        assert session.state == SessionState.Disconnected and child.state == JobState.Disconnected
        open(flag, "w").close()
        remote.connect_session(session.name)
        assert job.wait(60) and jobmagics.receive_job(job) == "after"
        job.remove()
    finally:
        remote.remove_session(session)


def test_the_session_channel_is_tuned_for_big_results_and_small_round_trips(one):
    import socket

    from jobmagics.transport.ssh import CHANNEL_WINDOW

    transport = one.link.transport
    assert transport.channel.in_window_size == CHANNEL_WINDOW  # big results are not held back by the window
    sock = transport.client.get_transport().sock
    assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)  # small frames go out at once


def _relay_descriptors():
    """For each relay running under sshd now: where its stdin and stdout lead."""
    import psutil

    from jobmagics.transport.bootstrap import BOOTSTRAP

    found = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if BOOTSTRAP in (proc.info["cmdline"] or []) and proc.parent().name().startswith("sshd"):
                found.append(tuple(os.readlink("/proc/%d/fd/%d" % (proc.pid, fd)) for fd in (0, 1)))
        except (psutil.Error, OSError):
            continue
    return found


def test_the_relay_hands_the_channel_to_the_session(one):
    # The session reads and writes sshd's pipes itself: the relay copies nothing, so a big result
    # crosses one process fewer.
    assert _relay_descriptors() == [(os.devnull, os.devnull)]
    value = remote.invoke("b'x' * (3 << 20)", session=one, namespace={})
    assert value == b"x" * (3 << 20)


def test_a_session_that_does_not_take_the_pipes_is_relayed_byte_by_byte(ssh_home):
    import json

    session = remote.new_session("one", python=BARE)
    try:
        files = session.link.transport.files
        info_path = "%s/%s.json" % (files.dir, files.id)
        with open(info_path) as fh:
            info = json.load(fh)
        assert info.pop("takes_pipes") is True
        with open(info_path, "w") as fh:  # as a session started by an older jobmagics says nothing
            json.dump(info, fh)
        remote.disconnect_session(session)
        remote.connect_session(session)
        [(stdin, stdout)] = _relay_descriptors()
        assert stdin.startswith("pipe:") and stdout.startswith("pipe:")
        assert remote.invoke("b'y' * (3 << 20)", session=session, namespace={}) == b"y" * (3 << 20)
    finally:
        remote.remove_session(session)


def _write_key(path, passphrase=""):
    import subprocess

    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", passphrase, "-f", str(path)], check=True)
    return str(path)


@pytest.mark.parametrize("fault, make, words", [
    ("missing", lambda d: str(d / "no-such-key"), "does not exist"),
    ("unreadable", lambda d: str(d), "cannot read the identity file"),
    ("malformed", lambda d: (d / "bad").write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nnot a key\n") and str(d / "bad"),
     "is not a valid private key"),
    ("passphrase", lambda d: _write_key(d / "locked", "secret"), "is protected by a passphrase"),
])
def test_an_identity_file_that_cannot_serve_is_one_line_naming_it_before_any_password_prompt(
        ssh_home, tmp_path, monkeypatch, fault, make, words):
    keys = tmp_path / "keys"
    keys.mkdir()
    path = make(keys)
    monkeypatch.setattr(remote, "password_prompt", lambda text: pytest.fail("asked for a password: " + text))
    before = remote.get_session()
    with pytest.raises(SSHError) as caught:
        remote.new_session("one", python=BARE, identity=path)
    message = str(caught.value)
    assert words in message and path in message and "\n" not in message, message
    assert remote.get_session() == before
