"""A real OpenSSH server on loopback for the SSH tests: throwaway keys, two addresses, one port.

``SSHServer`` runs ``/usr/sbin/sshd -D`` on 127.0.0.1 and 127.0.0.2 (one port, free on both)
with host keys, a user key and an ``sshd_config`` made in a temp dir. It is started through a
small launcher so that it is *not* a descendant of the test process (the per-test leak check
looks at descendants): the launcher shell backgrounds sshd, prints its pid and exits, and a
watchdog shell it leaves behind ends sshd when the pipe the test process holds is closed --
at ``stop()``, or when the test process dies without cleaning up.

``SSHHome`` is a throwaway client-side HOME: ``~/.ssh/config`` with the aliases ``one`` and
``two``, the user key and a ``known_hosts`` with the server's host keys, which tests can
empty (unknown host) or fill with other keys (changed host key).
"""
from __future__ import annotations

import base64
import collections
import hashlib
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import time

import psutil

from proc_helpers import _ended, wait_ended  # noqa: F401  (wait_ended is part of this module's API)

SSHD = "/usr/sbin/sshd"
ADDRESSES = ("127.0.0.1", "127.0.0.2")
ALIASES = ("one", "two")
HOSTS = dict(zip(ALIASES, ADDRESSES))  # alias -> address
HOST_KEY_TYPES = ("ed25519", "rsa")
PRIVSEP_DIR = "/run/sshd"
START_TIMEOUT = 30.0  # seconds for sshd to say it listens on both addresses
STOP_TIMEOUT = 15.0
PORT_ATTEMPTS = 5  # a port found free may be taken before sshd binds it: try another

# Run with stdin = the read end of a pipe whose write end only the test process holds:
# backgrounds sshd ("$@"), prints its pid, and leaves a watchdog that ends sshd when that pipe
# reaches EOF (stop() closes it, or the test process died); then exits at once.
_LAUNCHER = r'''
exec 3<&0
"$@" </dev/null >/dev/null 2>&1 3<&- &
sshd_pid=$!
(read _ <&3; kill -TERM "$sshd_pid" 2>/dev/null) </dev/null >/dev/null 2>&1 &
echo "$sshd_pid"
'''

Cut = collections.namedtuple("Cut", "killed orphaned")
Cut.__doc__ = """What ``kill_connections`` did: pids of the sshd processes it killed, and of the
commands that were running under them (now without their connection; they normally end on
their own when their stdin/stdout pipes close)."""


def missing_requirements():
    """Why the SSH tests cannot run here (a reason to skip with), or None."""
    if not hasattr(os, "geteuid"):
        return "the SSH tests start a real sshd, which needs a POSIX system"
    if os.geteuid() != 0:
        return "the SSH tests start a real sshd, which needs root (running as uid %d)" % os.geteuid()
    if not os.access(SSHD, os.X_OK):
        return "no OpenSSH server at %s (run scripts/install_ssh.sh to install openssh-server)" % SSHD
    if not shutil.which("ssh-keygen"):
        return "no ssh-keygen on PATH (run scripts/install_ssh.sh to install openssh-server)"
    return None


def current_user():
    return pwd.getpwuid(os.geteuid()).pw_name


def free_port(addresses=ADDRESSES):
    """A TCP port that is free on every one of ``addresses`` right now."""
    for _ in range(100):
        socks = []
        try:
            first = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            socks.append(first)
            first.bind((addresses[0], 0))
            port = first.getsockname()[1]
            for address in addresses[1:]:
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                socks.append(sock)
                sock.bind((address, port))
            return port
        except OSError:
            continue  # taken on another address: try another port
        finally:
            for sock in socks:
                sock.close()
    raise RuntimeError("no port free on all of %s" % (addresses,))


def keygen(path, kind, comment):
    """A new key pair without a passphrase at ``path`` and ``path.pub``; returns ``path``."""
    path = str(path)
    for stale in (path, path + ".pub"):
        if os.path.exists(stale):
            os.unlink(stale)
    bits = ["-b", "2048"] if kind == "rsa" else []  # quicker to make than the default 3072
    subprocess.run(["ssh-keygen", "-q", "-N", "", "-t", kind] + bits + ["-C", comment, "-f", path],
                   check=True, stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
    return path


class PublicKey:
    """One public key: its type name, base64 blob and OpenSSH SHA256 fingerprint."""

    def __init__(self, pub_path):
        self.path = str(pub_path)
        with open(self.path) as f:
            fields = f.read().split()
        self.type, self.base64 = fields[0], fields[1]
        self.blob = base64.b64decode(self.base64)
        self.fingerprint = "SHA256:" + base64.b64encode(hashlib.sha256(self.blob).digest()).decode().rstrip("=")

    def known_hosts_line(self, address, port):
        return "[%s]:%d %s %s\n" % (address, port, self.type, self.base64)

    def __repr__(self):
        return "<PublicKey %s %s>" % (self.type, self.fingerprint)


def _sshd_version():
    """(major, minor) of the OpenSSH server, e.g. (9, 2)."""
    out = subprocess.run([SSHD, "-V"], capture_output=True, text=True, timeout=30)
    match = re.search(r"OpenSSH_(\d+)\.(\d+)", out.stderr + out.stdout)
    return (int(match.group(1)), int(match.group(2))) if match else (0, 0)


class SSHServer:
    """An sshd on ADDRESSES (one port) with throwaway keys in ``root``: ``start()``, ``stop()``."""

    def __init__(self, root):
        self.root = str(root)
        self.user = current_user()
        self.addresses = ADDRESSES
        self.aliases = ALIASES
        self.hosts = dict(HOSTS)
        self.config_path = os.path.join(self.root, "sshd_config")
        self.log_path = os.path.join(self.root, "sshd.log")
        self.pid_path = os.path.join(self.root, "sshd.pid")
        self.authorized_keys = os.path.join(self.root, "authorized_keys")
        self.user_key = os.path.join(self.root, "user_ed25519")  # private key; public at + ".pub"
        self.port = None
        self.pid = None
        self.host_keys = {}  # "ed25519"/"rsa" -> PublicKey of the server's host keys
        self.other_host_keys = {}  # same types, keys the server does not have (a "changed" host key)
        self._proc = None  # psutil.Process of the listener
        self._watchdog_fd = None

    # ----- setup ----------------------------------------------------------------------------

    def _make_keys(self):
        for kind in HOST_KEY_TYPES:
            path = keygen(os.path.join(self.root, "ssh_host_%s_key" % kind), kind, "jobmagics-test-host")
            self.host_keys[kind] = PublicKey(path + ".pub")
            other = keygen(os.path.join(self.root, "other_host_%s_key" % kind), kind, "jobmagics-test-impostor")
            self.other_host_keys[kind] = PublicKey(other + ".pub")
        keygen(self.user_key, "ed25519", "jobmagics-test-user")
        shutil.copyfile(self.user_key + ".pub", self.authorized_keys)
        os.chmod(self.authorized_keys, 0o600)

    @property
    def fingerprint(self):
        """OpenSSH's SHA256 fingerprint of the server's ed25519 host key."""
        return self.host_keys["ed25519"].fingerprint

    def _write_config(self):
        lines = ["# Throwaway sshd for the jobmagics SSH tests (written by tests/sshd.py)",
                 "Port %d" % self.port,
                 "AddressFamily inet"]
        lines += ["ListenAddress %s" % address for address in self.addresses]
        lines += ["HostKey %s" % os.path.join(self.root, "ssh_host_%s_key" % kind) for kind in HOST_KEY_TYPES]
        lines += [
            "PidFile %s" % self.pid_path,
            "AuthorizedKeysFile %s" % self.authorized_keys,
            "PermitRootLogin prohibit-password",
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "UsePAM no",
            "StrictModes no",
            # No AcceptEnv line: the client's environment is not passed on.
            "PrintMotd no",
            "PrintLastLog no",
            "UseDNS no",
            "LogLevel VERBOSE",
            "MaxSessions 64",  # many channels on one connection
            "MaxStartups 64",  # many connections at once
            "Subsystem sftp internal-sftp",
        ]
        if _sshd_version() >= (9, 8):
            # Killed connections (kill_connections) would count as crashes and shut out 127.0.0.1.
            lines.append("PerSourcePenalties no")
        with open(self.config_path, "w") as f:
            f.write("\n".join(lines) + "\n")

    def start(self):
        """Make keys and config, launch sshd and wait until it listens on every address."""
        os.makedirs(self.root, exist_ok=True)
        os.makedirs(PRIVSEP_DIR, mode=0o755, exist_ok=True)  # privilege separation dir
        self._make_keys()
        failure = None
        for _ in range(PORT_ATTEMPTS):
            self.port = free_port(self.addresses)
            self._write_config()
            failure = self._launch()
            if failure is None:
                return self
            self.stop()
            if "Address already in use" not in failure:
                break
        raise RuntimeError("sshd did not start: %s\n--- sshd log ---\n%s" % (failure, self.log_text()))

    def _launch(self):
        """Start sshd; None once it listens on every address, else what went wrong."""
        for stale in (self.pid_path, self.log_path):
            if os.path.exists(stale):
                os.unlink(stale)
        read_fd, write_fd = os.pipe()  # non-inheritable: only the launcher gets read_fd (as its stdin)
        try:
            out = subprocess.run(
                ["/bin/sh", "-c", _LAUNCHER, "jobmagics-sshd-launcher",
                 SSHD, "-D", "-f", self.config_path, "-E", self.log_path],
                stdin=read_fd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                start_new_session=True, check=True, timeout=30)
        except BaseException:
            os.close(write_fd)
            raise
        finally:
            os.close(read_fd)
        self._watchdog_fd = write_fd
        self.pid = int(out.stdout.decode().strip())
        try:
            self._proc = psutil.Process(self.pid)
        except psutil.NoSuchProcess:
            return "sshd exited at once"
        wanted = ["Server listening on %s port %d." % (address, self.port) for address in self.addresses]
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            log = self.log_text()
            if "Address already in use" in log:
                return "a port was taken: Address already in use"
            if all(line in log for line in wanted) and self._pidfile_pid() is not None:
                break
            if _ended(self._proc):
                return "sshd exited before listening on %s" % ", ".join(self.addresses)
            if time.monotonic() > deadline:
                return "sshd did not listen on %s within %.0f s" % (", ".join(self.addresses), START_TIMEOUT)
            time.sleep(0.02)
        pidfile_pid = self._pidfile_pid()
        if pidfile_pid != self.pid:
            return "PidFile says %s, the launcher started %s" % (pidfile_pid, self.pid)
        return None

    def _pidfile_pid(self):
        try:
            with open(self.pid_path) as f:
                text = f.read()
        except FileNotFoundError:
            return None
        return int(text) if text.endswith("\n") and text.strip().isdigit() else None  # whole line written

    # ----- running --------------------------------------------------------------------------

    def log_text(self):
        """The sshd log so far (for debugging a failed test)."""
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def log_size(self):
        try:
            return os.path.getsize(self.log_path)
        except FileNotFoundError:
            return 0

    def log_since(self, offset):
        """The log written after ``offset`` (a ``log_size()`` taken earlier)."""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(offset)
                return f.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def running(self):
        return self._proc is not None and not _ended(self._proc)

    def connection_processes(self):
        """Every process serving a connection: the listener's descendants (sshd children and commands)."""
        if not self.running():
            return []
        try:
            return self._proc.children(recursive=True)
        except psutil.NoSuchProcess:
            return []

    def _connection_trees(self):
        """[(direct child of the listener, its descendants)] -- one per connection."""
        trees = []
        try:
            children = self._proc.children() if self.running() else []
        except psutil.NoSuchProcess:
            children = []
        for child in children:
            try:
                trees.append((child, child.children(recursive=True)))
            except psutil.NoSuchProcess:
                pass
        return trees

    def _serves(self, procs, address):
        """True if one of ``procs`` holds a TCP connection to ``address``:port."""
        for proc in procs:
            try:
                conns = proc.net_connections(kind="tcp") if hasattr(proc, "net_connections") \
                    else proc.connections(kind="tcp")
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
            for conn in conns:
                if conn.laddr and conn.laddr.ip == address and conn.laddr.port == self.port:
                    return True
        return False

    def kill_connections(self, host=None, timeout=STOP_TIMEOUT):
        """Kill (SIGKILL) the sshd processes serving connections -- all, or those to ``host``
        (an address or alias) -- as a network cut would end them; the listener stays.

        Returns a ``Cut``; waits until the killed processes have exited.
        """
        address = self.hosts.get(host, host)
        killed, orphaned = [], []
        for child, descendants in self._connection_trees():
            tree = [child] + descendants
            if address is not None and not self._serves(tree, address):
                continue
            for proc in tree:
                try:
                    is_sshd = proc.name().startswith("sshd")
                except psutil.NoSuchProcess:
                    continue
                (killed if is_sshd else orphaned).append(proc)
        for proc in killed:
            try:
                proc.send_signal(signal.SIGKILL)
            except psutil.NoSuchProcess:
                pass
        alive = wait_ended(killed, timeout)
        assert not alive, "sshd processes survived SIGKILL: %s" % [p.pid for p in alive]
        return Cut([p.pid for p in killed], [p.pid for p in orphaned])

    def wait_connections_closed(self, timeout=STOP_TIMEOUT):
        """Wait until no process serves a connection any more; the pids still there (empty if none)."""
        deadline = time.monotonic() + timeout
        while True:
            left = [p for p in self.connection_processes() if not _ended(p)]
            if not left or time.monotonic() > deadline:
                return [p.pid for p in left]
            time.sleep(0.02)

    # ----- teardown -------------------------------------------------------------------------

    def stop(self):
        """End every connection and the listener; waits for them to exit."""
        if self._proc is not None and self.running():
            self.kill_connections()
        if self._watchdog_fd is not None:
            os.close(self._watchdog_fd)  # the watchdog sends sshd SIGTERM
            self._watchdog_fd = None
        if self._proc is not None:
            try:
                self._proc.send_signal(signal.SIGTERM)
            except psutil.NoSuchProcess:
                pass
            if wait_ended([self._proc], STOP_TIMEOUT):
                try:
                    self._proc.send_signal(signal.SIGKILL)
                except psutil.NoSuchProcess:
                    pass
                wait_ended([self._proc], STOP_TIMEOUT)
            self._proc = None


class SSHHome:
    """A throwaway client-side HOME for ``server``: ``.ssh/config``, the user key, ``known_hosts``."""

    def __init__(self, server, home):
        self.server = server
        self.home = str(home)
        self.port = server.port
        self.user = server.user
        self.addresses = server.addresses
        self.aliases = server.aliases
        self.hosts = dict(server.hosts)
        self.fingerprint = server.fingerprint  # of the server's ed25519 host key
        self.ssh_dir = os.path.join(self.home, ".ssh")
        self.config_path = os.path.join(self.ssh_dir, "config")
        self.known_hosts = os.path.join(self.ssh_dir, "known_hosts")
        self.key = os.path.join(self.ssh_dir, "id_ed25519")
        os.makedirs(self.ssh_dir, mode=0o700, exist_ok=True)
        os.chmod(self.ssh_dir, 0o700)
        for suffix in ("", ".pub"):
            shutil.copyfile(server.user_key + suffix, self.key + suffix)
        os.chmod(self.key, 0o600)
        self._write_config()
        self.write_known_hosts()

    def _write_config(self):
        blocks = []
        for alias, address in self.hosts.items():
            blocks.append("\n".join([
                "Host %s" % alias,
                "    HostName %s" % address,
                "    Port %d" % self.port,
                "    User %s" % self.user,
                "    IdentityFile %s" % self.key,
                "    IdentitiesOnly yes",
                # OpenSSH finds ~ from the password database, not $HOME: name the files outright.
                "    UserKnownHostsFile %s" % self.known_hosts,
                "    GlobalKnownHostsFile /dev/null",
                "    StrictHostKeyChecking yes",
                "    UpdateHostKeys no",
                "    ConnectTimeout 15",
            ]))
        with open(self.config_path, "w") as f:
            f.write("\n\n".join(blocks) + "\n")
        os.chmod(self.config_path, 0o600)

    def _address(self, host):
        address = self.hosts.get(host, host)
        if address not in self.addresses:
            raise ValueError("unknown host %r: use one of %s or %s" % (host, self.aliases, self.addresses))
        return address

    def write_known_hosts(self, trusted=ADDRESSES, changed=()):
        """Write ``known_hosts``: the server's real keys for the ``trusted`` hosts, other keys (of
        the same types) for the ``changed`` ones, nothing for the rest (unknown). Hosts are
        addresses or aliases. Returns the file's path."""
        trusted = [self._address(h) for h in trusted]
        changed = [self._address(h) for h in changed]
        lines = []
        for address in self.addresses:
            if address in changed:
                keys = self.server.other_host_keys
            elif address in trusted:
                keys = self.server.host_keys
            else:
                continue
            lines += [keys[kind].known_hosts_line(address, self.port) for kind in HOST_KEY_TYPES]
        with open(self.known_hosts, "w") as f:
            f.writelines(lines)
        os.chmod(self.known_hosts, 0o600)
        return self.known_hosts

    def forget_hosts(self):
        """An empty ``known_hosts``: every host is unknown."""
        return self.write_known_hosts(trusted=())

    def change_host_key(self, *hosts):
        """``known_hosts`` with a different key for ``hosts`` (default: all); the others trusted."""
        changed = [self._address(h) for h in (hosts or self.addresses)]
        return self.write_known_hosts(trusted=[a for a in self.addresses if a not in changed], changed=changed)

    @property
    def other_fingerprint(self):
        """Fingerprint of the ed25519 key ``known_hosts`` holds for a changed host."""
        return self.server.other_host_keys["ed25519"].fingerprint

    def env(self, **extra):
        """An environment with this HOME (e.g. for starting a kernel)."""
        return dict(os.environ, HOME=self.home, **extra)

    def ssh_argv(self, host, *command):
        """An OpenSSH client command line for ``host`` (alias) with this config, in batch mode."""
        return ["ssh", "-F", self.config_path, "-o", "BatchMode=yes", host] + list(command)
