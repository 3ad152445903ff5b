"""The SSH test fixtures themselves: a real sshd on two loopback addresses, a throwaway client HOME."""
from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import shutil
import socket
import subprocess

import paramiko
import psutil
import pytest

import sshd

needs_ssh_client = pytest.mark.skipif(shutil.which("ssh") is None, reason="no OpenSSH client (ssh) on PATH")

TIMEOUT = 30  # seconds for any one network wait


def fingerprint(key):
    """OpenSSH's SHA256 fingerprint of a paramiko key, computed independently of tests/sshd.py."""
    return "SHA256:" + base64.b64encode(hashlib.sha256(key.asbytes()).digest()).decode().rstrip("=")


def connect(home, address):
    """A paramiko client logged in to ``address`` with the home's key, checking its known_hosts."""
    client = paramiko.SSHClient()
    client.load_host_keys(home.known_hosts)
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    try:
        client.connect(address, port=home.port, username=home.user, key_filename=home.key,
                       allow_agent=False, look_for_keys=False,
                       timeout=TIMEOUT, banner_timeout=TIMEOUT, auth_timeout=TIMEOUT)
    except BaseException:
        client.close()
        raise
    return client


@contextlib.contextmanager
def connected(home, address):
    client = connect(home, address)
    try:
        yield client
    finally:
        client.close()


def run(client, command):
    """(exit status, stdout, stderr) of ``command`` run over ``client``."""
    stdin, stdout, stderr = client.exec_command(command, timeout=TIMEOUT)
    stdin.close()
    out, err = stdout.read().decode(), stderr.read().decode()
    return stdout.channel.recv_exit_status(), out, err


def start_cat(client):
    """``cat`` running over ``client``, proven running by echoing a line; (stdin, stdout, channel)."""
    stdin, stdout, _stderr = client.exec_command("cat", timeout=TIMEOUT)
    assert echoes(stdin, stdout, "ping")
    return stdin, stdout, stdout.channel


def echoes(stdin, stdout, text):
    stdin.write(text + "\n")
    stdin.flush()
    return stdout.readline() == text + "\n"


def ssh(home, host, *command):
    return subprocess.run(home.ssh_argv(host, *command), stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=60)


def assert_transport_ends(client):
    """The client's transport notices the connection is gone (its thread ends) within TIMEOUT."""
    transport = client.get_transport()
    transport.join(TIMEOUT)
    assert not transport.is_alive(), "the SSH transport did not notice the cut"
    assert not transport.is_active()


# ----- the throwaway HOME ----------------------------------------------------------------------

def test_home_is_home(ssh_home):
    assert os.environ["HOME"] == ssh_home.home
    assert os.path.expanduser("~/.ssh/config") == ssh_home.config_path
    assert os.path.expanduser("~/.ssh/known_hosts") == ssh_home.known_hosts
    assert ssh_home.env()["HOME"] == ssh_home.home
    assert ssh_home.env(EXTRA="1")["EXTRA"] == "1"
    assert ssh_home.aliases == ("one", "two")
    assert ssh_home.addresses == ("127.0.0.1", "127.0.0.2")
    assert ssh_home.hosts == {"one": "127.0.0.1", "two": "127.0.0.2"}


@pytest.mark.parametrize("alias, address", [("one", "127.0.0.1"), ("two", "127.0.0.2")])
def test_paramiko_reads_the_config_from_home(ssh_home, alias, address):
    entry = paramiko.SSHConfig.from_path(os.path.expanduser("~/.ssh/config")).lookup(alias)
    assert entry["hostname"] == address
    assert int(entry["port"]) == ssh_home.port
    assert entry["user"] == ssh_home.user
    assert entry["identityfile"] == [ssh_home.key]
    assert entry["identitiesonly"] == "yes"


def test_known_hosts_holds_both_host_keys_for_both_addresses(ssh_home):
    keys = paramiko.HostKeys(ssh_home.known_hosts)
    for address in ssh_home.addresses:
        entry = keys.lookup("[%s]:%d" % (address, ssh_home.port))
        assert sorted(entry.keys()) == ["ssh-ed25519", "ssh-rsa"]


def test_fingerprint_is_the_one_ssh_keygen_shows(ssh_home, sshd_server):
    out = subprocess.run(["ssh-keygen", "-l", "-E", "sha256", "-f", sshd_server.host_keys["ed25519"].path],
                         capture_output=True, text=True, check=True, timeout=30).stdout
    assert out.split()[1] == ssh_home.fingerprint
    assert ssh_home.fingerprint.startswith("SHA256:") and not ssh_home.fingerprint.endswith("=")
    assert ssh_home.other_fingerprint != ssh_home.fingerprint


# ----- the OpenSSH client ----------------------------------------------------------------------

@needs_ssh_client
@pytest.mark.parametrize("alias, address", [("one", "127.0.0.1"), ("two", "127.0.0.2")])
def test_openssh_client_logs_in(ssh_home, alias, address):
    result = ssh(ssh_home, alias, "true")
    assert result.returncode == 0, result.stderr
    result = ssh(ssh_home, alias, "echo $SSH_CONNECTION")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[2:] == [address, str(ssh_home.port)]


@needs_ssh_client
def test_openssh_client_refuses_an_unknown_host(ssh_home):
    ssh_home.forget_hosts()
    result = ssh(ssh_home, "one", "true")
    assert result.returncode == 255
    assert "Host key verification failed" in result.stderr


@needs_ssh_client
def test_openssh_client_refuses_a_changed_host_key(ssh_home):
    ssh_home.change_host_key("one")
    result = ssh(ssh_home, "one", "true")
    assert result.returncode == 255
    assert "REMOTE HOST IDENTIFICATION HAS CHANGED" in result.stderr
    assert ssh_home.fingerprint in result.stderr
    result = ssh(ssh_home, "two", "true")  # the other host is still trusted
    assert result.returncode == 0, result.stderr


# ----- paramiko ----------------------------------------------------------------------------------

def test_paramiko_reaches_both_addresses(ssh_home, sshd_server):
    servers = []
    for address in ssh_home.addresses:
        with connected(ssh_home, address) as client:
            status, out, err = run(client, "echo $SSH_CONNECTION")
            assert status == 0, err
            servers.append(tuple(out.split()[2:]))
    assert servers == [(address, str(ssh_home.port)) for address in ssh_home.addresses]
    assert "Accepted publickey for %s" % ssh_home.user in sshd_server.log_text()


def test_paramiko_sees_the_fingerprinted_host_key(ssh_home):
    with connected(ssh_home, "127.0.0.1") as client:
        key = client.get_transport().get_remote_server_key()
    assert key.get_name() == "ssh-ed25519"
    assert fingerprint(key) == ssh_home.fingerprint


def test_paramiko_refuses_an_unknown_host(ssh_home):
    ssh_home.forget_hosts()
    assert os.path.getsize(ssh_home.known_hosts) == 0
    with pytest.raises(paramiko.SSHException, match="not found in known_hosts"):
        connect(ssh_home, "127.0.0.2")


def test_paramiko_refuses_a_changed_host_key(ssh_home):
    ssh_home.change_host_key("two")
    with pytest.raises(paramiko.BadHostKeyException) as info:
        connect(ssh_home, "127.0.0.2")
    exc = info.value
    assert fingerprint(exc.key) == ssh_home.fingerprint
    assert fingerprint(exc.expected_key) == ssh_home.other_fingerprint
    with connected(ssh_home, "127.0.0.1") as client:  # the other host is still trusted
        assert run(client, "true")[0] == 0


def test_bare_python_runs_over_ssh(ssh_home):
    if not os.access("/usr/bin/python3", os.X_OK):
        pytest.skip("no /usr/bin/python3 on this computer")
    with connected(ssh_home, "127.0.0.1") as client:
        status, out, err = run(client, "/usr/bin/python3 -S -c 'import sys; print(sys.flags.no_site)'")
    assert (status, out) == (0, "1\n"), err


# ----- cutting connections ----------------------------------------------------------------------

def test_kill_connections_ends_an_open_session(ssh_home, sshd_server):
    with connected(ssh_home, "127.0.0.1") as client:
        _stdin, stdout, channel = start_cat(client)
        cut = sshd_server.kill_connections()
        assert cut.killed, sshd_server.log_text()
        assert sshd_server.pid not in cut.killed  # the listener stays
        assert stdout.read() == b""  # EOF (a socket.timeout after TIMEOUT would fail the test)
        assert_transport_ends(client)
        assert channel.closed
    # The command lost its connection and ends on its own; the server takes new connections.
    assert not sshd.wait_ended(cut.orphaned, TIMEOUT)
    assert not sshd_server.wait_connections_closed()
    with connected(ssh_home, "127.0.0.1") as client:
        assert run(client, "true")[0] == 0


def test_kill_connections_to_one_host_leaves_the_other(ssh_home, sshd_server):
    with connected(ssh_home, "127.0.0.1") as one, connected(ssh_home, "127.0.0.2") as two:
        _in1, out1, _ = start_cat(one)
        in2, out2, _ = start_cat(two)
        cut = sshd_server.kill_connections("one")
        assert cut.killed
        assert out1.read() == b""
        assert_transport_ends(one)
        assert echoes(in2, out2, "still here")
        assert two.get_transport().is_active()
        cut_two = sshd_server.kill_connections("127.0.0.2")
        assert cut_two.killed and not set(cut_two.killed) & set(cut.killed)
        assert out2.read() == b""
        assert_transport_ends(two)
    assert not sshd_server.wait_connections_closed()


def test_kill_connections_without_connections_kills_nothing(sshd_server):
    assert not sshd_server.wait_connections_closed()
    assert sshd_server.kill_connections() == sshd.Cut([], [])
    assert sshd_server.running()


# ----- the server's own lifetime ------------------------------------------------------------------

def test_sshd_is_not_a_child_of_the_tests(sshd_server):
    assert sshd_server.pid not in [p.pid for p in psutil.Process().children(recursive=True)]
    with open(sshd_server.pid_path) as f:
        assert int(f.read()) == sshd_server.pid


def test_a_stopped_server_leaves_nothing_running(tmp_path, sshd_server):
    server = sshd.SSHServer(tmp_path / "sshd")
    try:
        server.start()
        home = sshd.SSHHome(server, tmp_path / "home")
        with connected(home, "127.0.0.2") as client:
            start_cat(client)
            listener = psutil.Process(server.pid)
            connection = server.connection_processes()
            assert connection
            server.stop()
            assert_transport_ends(client)
        assert not sshd.wait_ended([listener] + connection, TIMEOUT)
        for address in server.addresses:  # nothing listens on the port any more (TIME_WAIT aside)
            with socket.socket() as sock:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind((address, server.port))
                sock.listen()
    finally:
        server.stop()
    assert sshd_server.running()  # the session's server is another one
