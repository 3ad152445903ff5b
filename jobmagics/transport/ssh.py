"""An agent on another computer, reached over SSH with paramiko: the transport behind sessions.

Host names resolve through ``~/.ssh/config`` (HostName, Port, User,
IdentityFile, IdentitiesOnly, ProxyCommand, ProxyJump); keys come from the
ssh-agent, the config and ``~/.ssh``. Host keys are checked against
``~/.ssh/known_hosts``: an unknown key is refused (or, asked to, accepted and
saved), a changed key is always refused, both with the key's fingerprint.
"""
from __future__ import annotations

import base64
import getpass
import hashlib
import os
import shlex
import socket
import subprocess

import paramiko

from ..errors import UserInputError
from .base import Transport
from .bootstrap import agent_bundle, agent_command

#: Seconds any network wait may take before the session is declared unreachable.
CONNECT_TIMEOUT = 15.0

#: Seconds a ProxyCommand has to end after SIGTERM when its connection closes, before SIGKILL.
PROXY_EXIT_GRACE = 3.0

#: Receive window of the channel to an agent. paramiko's default (2 MiB) lets the server send
#: only that much before paramiko tops it up; with 16 MiB a raw channel read ran about 1.5x as
#: fast on loopback (283 -> 440 MB/s, see bench/ssh_metrics.py). Packets stay at paramiko's
#: default size: larger ones did not help.
CHANNEL_WINDOW = 16 * 1024 * 1024


class SSHError(UserInputError):
    """A computer could not be reached or logged into over SSH (shown as one line; nothing changes)."""


class HostKeyError(SSHError):
    """The computer's host key is unknown or has changed; nothing was sent to it."""


def fingerprint(key):
    """OpenSSH's SHA256 fingerprint of a host key."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode("ascii").rstrip("=")


def known_hosts_path():
    return os.path.expanduser("~/.ssh/known_hosts")


class _UnknownHostPolicy(paramiko.MissingHostKeyPolicy):
    """Refuse an unknown host key with its fingerprint, or accept and save it when asked to."""

    def __init__(self, accept_new, label, known_hosts):
        self.accept_new = accept_new
        self.label = label
        self.known_hosts = known_hosts

    def missing_host_key(self, client, hostname, key):
        if not self.accept_new:
            raise HostKeyError(
                "the host key of %s is not known: %s %s. If it is the right key, connect once with "
                "--accept-new-host-key (or add it to %s)" % (self.label, key.get_name(), fingerprint(key),
                                                            self.known_hosts))
        client.get_host_keys().add(hostname, key.get_name(), key)
        path = self.known_hosts
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        client.save_host_keys(path)


class HostConfig:
    """Where and as whom to connect, from the arguments and ``~/.ssh/config``."""

    def __init__(self, host, user=None, port=None, identity=None):
        config = paramiko.SSHConfig()
        path = os.path.expanduser("~/.ssh/config")
        if os.path.exists(path):
            config = paramiko.SSHConfig.from_path(path)
        entry = config.lookup(host)
        self.alias = host
        self.hostname = entry.get("hostname", host)
        self.port = int(port or entry.get("port", 22))
        self.user = user or entry.get("user") or getpass.getuser()
        if identity:  # asked for by name: it must serve, or the error says why (before any password prompt)
            self.identity_files = [check_identity(os.path.expanduser(identity))]
        else:  # the config's (and ssh's defaults) may be absent; one that is there must be a key
            files = [os.path.expanduser(f) for f in entry.get("identityfile", [])]
            self.identity_files = [check_identity(f, agent_may_unlock=True) for f in files if os.path.exists(f)]
        self.identities_only = entry.get("identitiesonly", "no").lower() == "yes" or bool(identity)
        self.proxy_command = entry.get("proxycommand")
        self.proxy_jump = entry.get("proxyjump")
        files = entry.get("userknownhostsfile")
        self.known_hosts = os.path.expanduser(files.split()[0]) if files else known_hosts_path()

    @property
    def label(self):
        where = "%s:%d" % (self.hostname, self.port)
        return self.alias if self.alias == self.hostname else "%s (%s)" % (self.alias, where)


def check_identity(path, agent_may_unlock=False):
    """``path`` if it holds a private key paramiko can use; else SSHError naming it and what is wrong.

    A key protected by a passphrase is refused (jobmagics does not ask for passphrases) unless it
    came from the SSH config, where ssh-agent may hold it unlocked.
    """
    try:
        paramiko.PKey.from_path(path)
    except FileNotFoundError:
        raise SSHError("the identity file %s does not exist" % path) from None
    except OSError as exc:
        raise SSHError("cannot read the identity file %s: %s" % (path, exc.strerror or exc)) from None
    except (paramiko.PasswordRequiredException, TypeError) as exc:
        if not isinstance(exc, paramiko.PasswordRequiredException) and "password" not in str(exc):
            raise SSHError("the identity file %s is not a valid private key" % path) from None
        if not agent_may_unlock:
            raise SSHError("the identity file %s is protected by a passphrase: load it into ssh-agent "
                           "(ssh-add %s) and connect without --identity" % (path, shlex.quote(path))) from None
    except (paramiko.SSHException, ValueError):
        raise SSHError("the identity file %s is not a valid private key" % path) from None
    return path


def connect(config, accept_new_host_key=False, password_prompt=None):
    """A logged-in paramiko client for ``config``; SSHError/HostKeyError say what went wrong."""
    client = paramiko.SSHClient()
    try:
        if os.path.exists(config.known_hosts):
            client.load_host_keys(config.known_hosts)
    except (OSError, paramiko.SSHException, ValueError) as exc:
        raise SSHError("cannot read %s: %s" % (config.known_hosts, exc)) from None
    client.set_missing_host_key_policy(_UnknownHostPolicy(accept_new_host_key, config.label, config.known_hosts))
    kwargs = dict(hostname=config.hostname, port=config.port, username=config.user,
                  key_filename=config.identity_files or None, timeout=CONNECT_TIMEOUT,
                  banner_timeout=CONNECT_TIMEOUT, auth_timeout=CONNECT_TIMEOUT, channel_timeout=CONNECT_TIMEOUT,
                  allow_agent=not config.identities_only, look_for_keys=not config.identities_only,
                  sock=_proxy_socket(config, accept_new_host_key, password_prompt))
    try:
        try:
            client.connect(**kwargs)
        except (paramiko.AuthenticationException, paramiko.SSHException) as exc:
            # No key was accepted (or there was none to offer): a password is the way left.
            no_key = isinstance(exc, paramiko.AuthenticationException) or "authentication methods" in str(exc)
            if password_prompt is None or not no_key or isinstance(exc, paramiko.BadHostKeyException):
                raise
            # The password is used for this login only: never stored, logged or shown.
            client.connect(password=password_prompt("Password for %s@%s: " % (config.user, config.label)),
                           **dict(kwargs, sock=_proxy_socket(config, accept_new_host_key, password_prompt)))
    except HostKeyError:
        client.close()
        raise
    except paramiko.BadHostKeyException as exc:
        client.close()
        raise HostKeyError(
            "the host key of %s has CHANGED: it is now %s %s, known_hosts has %s. This may be an attack; "
            "nothing was sent. If the change is expected, remove the old key (ssh-keygen -R %s) and "
            "connect again" % (config.label, exc.key.get_name(), fingerprint(exc.key), fingerprint(exc.expected_key),
                               shlex.quote(_known_hosts_name(config)))) from None
    except paramiko.AuthenticationException:
        client.close()
        raise SSHError("cannot log in to %s as %s: no key or password was accepted"
                       % (config.label, config.user)) from None
    except (socket.timeout, TimeoutError):
        client.close()
        raise SSHError("%s did not answer within %.0f s" % (config.label, CONNECT_TIMEOUT)) from None
    except (OSError, paramiko.SSHException) as exc:
        client.close()
        raise SSHError("cannot connect to %s: %s" % (config.label, exc)) from None
    client.get_transport().set_keepalive(15)
    _no_delay(client.get_transport().sock)
    return client


def _no_delay(sock):
    """Send small writes at once (TCP_NODELAY).

    Frames are small writes in both directions (a request, its records, the
    acknowledgement of what was received); with Nagle's algorithm a write
    that follows one the server has not acknowledged yet waits for its
    delayed ACK: back-to-back %invoke calls took 44 ms each instead of 1 ms
    (bench/ssh_metrics.py). A ProxyCommand pipe or a ProxyJump channel is no
    TCP socket (the jump host's own connection gets the option here too).
    """
    if isinstance(sock, socket.socket) and sock.family in (socket.AF_INET, socket.AF_INET6):
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass


def _known_hosts_name(config):
    return config.hostname if config.port == 22 else "[%s]:%d" % (config.hostname, config.port)


def _proxy_socket(config, accept_new_host_key, password_prompt):
    if config.proxy_command:
        return _ProxyCommand(config.proxy_command.replace("%h", config.hostname)
                                     .replace("%p", str(config.port)).replace("%r", config.user))
    if config.proxy_jump:
        jump = connect(_jump_config(config.proxy_jump), accept_new_host_key, password_prompt)
        channel = jump.get_transport().open_channel("direct-tcpip", (config.hostname, config.port), ("127.0.0.1", 0))
        channel.jump_client = jump  # closed with the connection it carries (close_client)
        return channel
    return None


class _ProxyCommand(paramiko.ProxyCommand):
    """paramiko's ProxyCommand, whose close() ends the command and lets go of its pipes.

    paramiko's own only sends SIGTERM: the command was never reaped and its pipes were left
    to the garbage collector (and it signalled a pid that may have been reaped already).
    """

    def close(self):
        process = self.process
        if process.poll() is None:
            process.terminate()
        try:
            process.wait(timeout=PROXY_EXIT_GRACE)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        for pipe in (process.stdin, process.stdout, process.stderr):
            if pipe is not None:
                pipe.close()


def _jump_config(spec):
    """The first hop of a ProxyJump value: ``[user@]host[:port]``."""
    first = spec.split(",")[0].strip()
    user, _, rest = first.rpartition("@")
    host, _, port = rest.partition(":")
    return HostConfig(host, user=user or None, port=int(port) if port else None)


def close_client(client):
    """Close a client and the jump host's connection under it, if any."""
    sock = getattr(client.get_transport(), "sock", None) if client.get_transport() else None
    client.close()
    jump = getattr(sock, "jump_client", None)
    if jump is not None:
        jump.close()


class _ChannelReader:
    """``readinto`` over a channel's stdout, as the frame reader wants."""

    def __init__(self, channel):
        self.channel = channel

    def readinto(self, buffer):
        data = self.channel.recv(len(buffer))
        buffer[: len(data)] = data
        return len(data)


class _ChannelWriter:
    def __init__(self, channel):
        self.channel = channel

    def write(self, data):
        view = data if isinstance(data, bytes) else memoryview(data).cast("B")  # sent in packets from memory
        self.channel.sendall(view)
        return len(view)

    def flush(self):
        pass


class SSHTransport(Transport):
    """Runs the agent with the remote ``python`` over an SSH exec channel."""

    def __init__(self, host, user=None, port=None, identity=None, python="python3",
                 accept_new_host_key=False, password_prompt=None):
        self.config = HostConfig(host, user=user, port=port, identity=identity)
        self.location = host
        self.python = python
        self.accept_new_host_key = accept_new_host_key
        self.password_prompt = password_prompt
        self.client = None
        self.channel = None

    def open(self):
        self.client = connect(self.config, self.accept_new_host_key, self.password_prompt)
        self.channel = self.run_python()
        self.reader = _ChannelReader(self.channel)
        self.writer = _ChannelWriter(self.channel)

    def run_python(self):
        """A new exec channel running the remote ``python`` with the bootstrap, waiting for its bundle."""
        try:
            channel = self.client.get_transport().open_session(window_size=CHANNEL_WINDOW,
                                                                   timeout=CONNECT_TIMEOUT)
            channel.exec_command(" ".join(shlex.quote(a) for a in agent_command(shlex.split(self.python))))
        except (paramiko.SSHException, OSError) as exc:
            self.client.close()
            raise SSHError("cannot start a program on %s: %s" % (self.config.label, exc)) from None
        return channel

    def send_bootstrap(self):
        self.writer.write(agent_bundle())

    def close(self):
        if self.channel is not None:
            try:
                self.channel.shutdown_write()  # EOF on the agent's stdin: it stops its jobs and exits
            except (OSError, EOFError, paramiko.SSHException):
                pass

    def kill(self, grace=3.0):
        self.close()
        if self.client is not None:
            close_client(self.client)

    def reap(self, grace=3.0):
        if self.client is not None:
            close_client(self.client)

    def _read_exit_reason(self, timeout):
        channel = self.channel
        if channel is None:
            return "not connected"
        if not channel.status_event.wait(timeout):
            return "the connection to %s was lost" % self.config.label
        code = channel.recv_exit_status()
        stderr = b""
        while channel.recv_stderr_ready():
            stderr += channel.recv_stderr(65536)
        text = stderr.decode("utf-8", "replace").strip().splitlines()
        if code == 127:
            return "%s has no %s (install Python 3.8 or newer there, or pass --python)" % (
                self.config.label, self.python)
        if code == -1:  # the channel closed without an exit status (the connection went first)
            reason = "the agent on %s ended without an exit status" % self.config.label
        else:
            reason = "the agent on %s exited with code %d" % (self.config.label, code)
        return reason + (": " + text[-1] if text else "")


class RemoteFiles:
    """Where a detached session lives on another computer, and the token that opens it."""

    def __init__(self, directory, session_id, token):
        self.dir = directory
        self.id = session_id
        self._token = token

    @property
    def socket(self):
        return "%s/%s.sock" % (self.dir, self.id)

    def token(self):
        return self._token


class SSHRelayTransport(SSHTransport):
    """A detached session on another computer, reached through a relay to its socket.

    The session runs apart from the SSH connection; when the connection drops,
    only the relay ends, and a new connection (from this kernel or another)
    carries on where the old one stopped.
    """

    def __init__(self, host, files=None, **options):
        super().__init__(host, **options)
        self.files = files
        self.options = options

    def start_session(self, name, idle_timeout):
        """Start a detached session there (over this connection); its files."""
        import json
        import secrets
        import uuid

        self.client = connect(self.config, self.accept_new_host_key, self.password_prompt)
        token, sid = secrets.token_hex(32), uuid.uuid4().hex[:16]
        settings = {"dir": None, "id": sid, "name": name, "token": token, "idle_timeout": idle_timeout}
        channel = self.run_python()
        _send_input(channel, agent_bundle("detached") + (json.dumps(settings) + "\n").encode())
        answer = _read_all(channel)
        if not answer.startswith(b"READY"):
            self.channel = channel
            reason = self.exit_reason(5.0)  # before closing: a closed channel forgets its exit status
            close_client(self.client)
            raise SSHError("the session did not start on %s: %s" % (self.config.label, reason))
        directory = answer.decode().split(None, 2)[2].strip()
        self.files = RemoteFiles(directory, sid, token)
        return self.files

    def open(self):
        import json

        if self.client is None or not self.client.get_transport() or not self.client.get_transport().is_active():
            self.client = connect(self.config, self.accept_new_host_key, self.password_prompt)
        self.channel = self.run_python()
        self.channel.sendall(agent_bundle("relay") + (json.dumps({"socket": self.files.socket}) + "\n").encode())
        self.reader = _ChannelReader(self.channel)
        self.writer = _ChannelWriter(self.channel)

    def greeting(self, intent, applied=None):
        return {"token": self.files.token(), "intent": intent, "applied": applied or {}}

    def send_bootstrap(self):
        pass  # the session runs there already

    def renewed(self):
        """A new, unopened connection to the same session (after a disconnection)."""
        return SSHRelayTransport(self.location, files=self.files, **self.options)


def _send_input(channel, data):
    """Write a remote command's whole input, then end it."""
    try:
        channel.sendall(data)
        channel.shutdown_write()
    except OSError:
        pass  # the command ended without reading its input: its exit status says why


def _read_all(channel):
    chunks = []
    while True:
        data = channel.recv(65536)
        if not data:
            return b"".join(chunks)
        chunks.append(data)


def list_sessions(host, **options):
    """This user's detached sessions on ``host``: dicts with id, name, pid, availability, jobs, token."""
    import json

    transport = SSHTransport(host, **options)
    transport.client = connect(transport.config, transport.accept_new_host_key, transport.password_prompt)
    try:
        transport.channel = transport.run_python()
        _send_input(transport.channel, agent_bundle("listing"))
        text = _read_all(transport.channel).decode("utf-8", "replace").strip().splitlines()
        try:
            return json.loads(text[-1])  # the listing always prints its line, "[]" for none
        except (IndexError, ValueError):
            raise SSHError("cannot list the sessions on %s: %s"
                           % (transport.config.label, transport.exit_reason(5.0))) from None
    finally:
        close_client(transport.client)
