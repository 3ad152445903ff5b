"""SSH metrics of the benchmark: sessions to a real OpenSSH server on loopback, against paramiko floors.

    .venv/bin/python bench/ssh_metrics.py [--quick]     # alone; bench/run.py runs it too

The server and a throwaway client HOME come from tests/sshd.py, as the SSH
tests make them (root and /usr/sbin/sshd needed: ``skip_reason()`` says why
not). One jobmagics session (``remote.new_session``) and one plain paramiko
connection are opened once; the metrics then run on those open connections:

- a trivial ``remote.invoke`` (what ``%invoke --session`` calls; five back
  to back, the mean of each five) against ``exec_command("true")`` read to
  its exit status, and an SFTP ``stat`` as the round trip under both;
- a large bytes result, held by a finished job in the session, received with
  ``jobmagics.receive_job(..., keep=True, session=S)`` (what ``%receive_job --session S
  --keep`` calls), against a raw channel read of the same number of bytes from
  ``head -c N /dev/zero``, as throughput. Both clocks leave out making the
  bytes (the floor's starts at its first byte). Alongside, for information:
  ``remote.invoke`` of code that builds the same bytes there and returns them,
  end to end.

Everything is closed and stopped at the end, and no process of the session
or of sshd may be left.
"""
from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import psutil

TESTS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests")
REMOTE_PYTHON = "/usr/bin/python3"  # the system Python, as the SSH tests' remote (no numpy, no dill)
READ_CHUNK = 4 << 20  # the floor reads the channel in chunks this big


def _sshd():
    if TESTS_DIR not in sys.path:
        sys.path.insert(0, TESTS_DIR)
    import sshd

    return sshd


def skip_reason():
    """Why the SSH metrics cannot run here, or None."""
    return _sshd().missing_requirements()


@contextlib.contextmanager
def _environment(root):
    """A loopback sshd and a client HOME (``$HOME`` while inside), both gone afterwards."""
    sshd = _sshd()
    server = sshd.SSHServer(os.path.join(root, "sshd"))
    old_home = os.environ.get("HOME")
    try:
        server.start()
        home = sshd.SSHHome(server, os.path.join(root, "home"))
        os.environ["HOME"] = home.home
        yield server, home
    finally:
        if old_home is None:
            os.environ.pop("HOME", None)
        else:
            os.environ["HOME"] = old_home
        server.stop()


def _paramiko_client(home):
    import paramiko

    client = paramiko.SSHClient()
    client.load_host_keys(home.known_hosts)
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    client.connect(home.hosts["one"], port=home.port, username=home.user, key_filename=home.key,
                   allow_agent=False, look_for_keys=False, timeout=15)
    # paramiko starts a re-key after 512 MB; if the server then closes a channel, paramiko's own
    # transport thread waits for the re-key it alone could finish, and fails after 30 s ("Key-exchange
    # timed out waiting for key negotiation", paramiko issue #822). The floor never re-keys.
    packetizer = client.get_transport().packetizer
    packetizer.REKEY_BYTES = packetizer.REKEY_PACKETS = 1 << 62
    return client


def _exec_true(client):
    channel = client.get_transport().open_session(timeout=15)
    channel.exec_command("true")
    while channel.recv(65536):
        pass
    status = channel.recv_exit_status()
    channel.close()
    assert status == 0, status


def _shell_rc_seconds(rounds):
    """What the remote user's shell spends in its start-up files for a command run over SSH.

    sshd runs every command as ``$SHELL -c COMMAND``; bash then reads ~/.bashrc when it sees
    SSH_CLIENT. The "remote" user is this machine's, so the difference of ``$SHELL -c true``
    with and without SSH_CLIENT, run here, estimates that part of the exec_command floor.
    """
    user = pwd.getpwuid(os.geteuid())
    shell = user.pw_shell or "/bin/sh"
    plain = {"HOME": user.pw_dir, "USER": user.pw_name, "SHELL": shell, "PATH": "/usr/local/bin:/usr/bin:/bin"}
    over_ssh = dict(plain, SSH_CLIENT="127.0.0.1 50000 22", SSH_CONNECTION="127.0.0.1 50000 127.0.0.1 22")

    def run(env):
        return lambda: subprocess.run([shell, "-c", "true"], env=env, stdin=subprocess.DEVNULL, check=False)

    t_ssh, t_plain = _alternate(run(over_ssh), run(plain), rounds)
    return max(0.0, t_ssh - t_plain)


def _sftp_roundtrip(sftp):
    sftp.stat(".")


def _read_raw(client, size):
    """Seconds from the first byte to the end of ``size`` bytes read from a channel.

    The clock starts at the first byte: starting the command costs the remote
    shell's start-up (on the development VM, root's ~/.bashrc runs
    ``pyenv init``: about 0.1 s), which is no part of reading a channel.
    """
    from jobmagics.transport import ssh

    # The channel jobmagics' sessions use (their receive window), so the floor is the same road.
    window = getattr(ssh, "CHANNEL_WINDOW", None)
    channel = client.get_transport().open_session(window_size=window, timeout=15)
    channel.exec_command("head -c %d /dev/zero" % size)
    data = channel.recv(READ_CHUNK)
    start = time.perf_counter()
    got = len(data)
    while data:
        data = channel.recv(READ_CHUNK)
        got += len(data)
    elapsed = time.perf_counter() - start
    status = channel.recv_exit_status()
    channel.close()
    assert status == 0 and got == size, (status, got, size)
    return elapsed


def _timed(fn):
    """Seconds ``fn()`` took; a function that times itself returns its own seconds."""
    start = time.perf_counter()
    own = fn()
    return own if isinstance(own, float) else time.perf_counter() - start


def _alternate(case, floor, rounds, warm_up=True):
    """Medians of ``case`` and ``floor`` run alternately ``rounds`` times each, after one warm-up."""
    if warm_up:
        case(), floor()
    times = {case: [], floor: []}
    for _ in range(rounds):
        for fn in (case, floor):
            times[fn].append(_timed(fn))
    return statistics.median(times[case]), statistics.median(times[floor])


def _session_processes(session):
    """The session's agent process (a daemon on the "remote" side, i.e. this machine), if any."""
    pid = (session.hello or {}).get("pid")
    try:
        return [psutil.Process(pid)] if pid else []
    except psutil.NoSuchProcess:
        return []


def run(quick: bool) -> list:
    """Rows in bench/run.py's format (ask ``skip_reason()`` first: this needs root and an sshd)."""
    import jobmagics
    from jobmagics.sessions import remote

    sshd = _sshd()
    size = (32 if quick else 256) << 20
    warm_size = 32 << 20
    trivial_rounds = 15 if quick else 30
    big_rounds = 2 if quick else 5
    root = tempfile.mkdtemp(prefix="jobmagics-bench-ssh-")
    rows = []
    session = client = None
    agents, leftovers, stray = [], [], []
    try:
        with _environment(root) as (server, home):
            try:
                client = _paramiko_client(home)
                session = remote.new_session("one", python=REMOTE_PYTHON, name="bench")
                agents = _session_processes(session)

                def invoke_trivial(burst=5):
                    # Back to back, as a loop of %invoke cells would: spaced out, each would find every
                    # TCP segment before it acknowledged, and Nagle's algorithm would never show.
                    start = time.perf_counter()
                    for _ in range(burst):
                        assert remote.invoke("1", session=session, namespace={}) == 1
                    return (time.perf_counter() - start) / burst

                t_case, t_floor = _alternate(invoke_trivial, lambda: _exec_true(client), trivial_rounds)
                # Not the target's floor, but the bound under it: one request and its reply on a channel
                # that is open already (an SFTP stat), as invoke's are.
                sftp = client.open_sftp()
                t_rtt = _alternate(lambda: _sftp_roundtrip(sftp), lambda: None, trivial_rounds)[0]
                sftp.close()
                rc = _shell_rc_seconds(5 if quick else 9)
                rows.append({"metric": "trivial %invoke on an open SSH session", "jobmagics_s": t_case,
                             "floor": 'paramiko exec_command("true")', "floor_s": t_floor,
                             "ratio": t_case / t_floor, "target": "≤ 0.02×",
                             "roundtrip_floor": "SFTP stat on an open channel", "roundtrip_floor_s": t_rtt,
                             # The floor counts the remote shell's rc files (on the development VM, root's
                             # ~/.bashrc runs pyenv init): without them, the floor and the ratio would be these.
                             # (An estimate: None when the two noisy numbers leave nothing.)
                             "floor_shell_rc_s": rc, "floor_without_rc_s": t_floor - rc if t_floor > rc else None,
                             "ratio_without_rc": t_case / (t_floor - rc) if t_floor > rc else None})

                def invoke_big(size=size):
                    value = remote.invoke("b'x' * %d" % size, session=session, namespace={})
                    assert isinstance(value, bytes) and len(value) == size, (type(value), len(value))

                jobmagics.start_job("b'x' * %d" % size, name="big", namespace={}, session=session)
                jobmagics.wait_job("big", timeout=60, session=session)

                def receive_big(size=size):
                    value = jobmagics.receive_job("big", keep=True, session=session)
                    assert isinstance(value, bytes) and len(value) == size, (type(value), len(value))

                invoke_big(warm_size), _read_raw(client, warm_size)  # warm-up, smaller: it costs seconds
                receive_big(), receive_big()  # the first receipts map memory this VM has not touched yet
                t_case, t_floor = _alternate(receive_big, lambda: _read_raw(client, size), big_rounds, warm_up=False)
                t_invoke = statistics.median(_timed(invoke_big) for _ in range(big_rounds))
                mb = size / 1e6
                rows.append({"metric": "%d MB result from a remote session" % (size >> 20), "jobmagics_s": t_case,
                             "floor": "raw paramiko channel read, first byte → EOF", "floor_s": t_floor,
                             "ratio": t_case / t_floor, "target": "≥ 0.8× throughput",
                             "throughput_mb_s": mb / t_case, "floor_throughput_mb_s": mb / t_floor,
                             "throughput_ratio": t_floor / t_case,
                             "invoke_building_it_s": t_invoke, "invoke_throughput_ratio": t_floor / t_invoke})
            finally:
                if session is not None:
                    remote.remove_session(session)
                    leftovers = sshd.wait_ended(agents, 15)
                if client is not None:
                    client.close()
            stray = server.wait_connections_closed(15)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    for proc in leftovers:  # should not happen: say so, and do not leave it running
        print("warning: the session's agent %d was still running after remove_session; killed" % proc.pid,
              file=sys.stderr)
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()
    if stray:
        print("warning: sshd still served connections at the end: %s" % stray, file=sys.stderr)
    return rows


if __name__ == "__main__":
    reason = skip_reason()
    if reason:
        sys.exit("SSH metrics skipped: %s" % reason)
    from run import format_row  # bench/run.py: one table format

    for row in run("--quick" in sys.argv[1:]):
        print(format_row(row))
