"""The transport contract: a byte stream to an agent, and the means to end it."""
from __future__ import annotations

import abc
import contextlib


class Transport(abc.ABC):
    """One connection to one agent process.

    After :meth:`open`, ``reader`` (has ``readinto``) and ``writer`` (has
    ``write``/``flush``) carry frames; :meth:`send_bootstrap` sends the agent's
    source first where the far side starts from a bare Python. :meth:`close`
    ends the connection politely; :meth:`kill` ends it (and, for a process
    this transport started, everything it started); :meth:`reap` cleans up
    after the agent ended. :meth:`exit_reason` says, after the stream ended,
    why the agent ended.

    Transports to a detached session also have ``files``, ``greeting(intent,
    applied)`` (the first frame, proving the token) and ``renewed()`` (a new,
    unopened connection to the same session).
    """

    location = "localhost"
    reader = None
    writer = None

    @abc.abstractmethod
    def open(self) -> None:
        ...

    @abc.abstractmethod
    def send_bootstrap(self) -> None:
        ...

    @abc.abstractmethod
    def close(self) -> None:
        ...

    @abc.abstractmethod
    def kill(self, grace: float) -> None:
        ...

    def ordered(self):
        """Held while the link applies a frame (a process job's transport first takes its text)."""
        return contextlib.nullcontext()

    def reap(self, grace: float = 0) -> None:
        """After the agent ended: release what is left of the connection."""
        self.kill(grace)

    def exit_reason(self, timeout: float = 5.0) -> str:
        """Why the agent ended; read once (it consumes what the agent wrote to stderr)."""
        if getattr(self, "_exit_reason", None) is None:
            self._exit_reason = self._read_exit_reason(timeout)
        return self._exit_reason

    @abc.abstractmethod
    def _read_exit_reason(self, timeout: float) -> str:
        ...
