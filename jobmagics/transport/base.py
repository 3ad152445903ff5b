"""The transport contract: a byte stream to an agent, and the means to end it."""
from __future__ import annotations

import abc


class Transport(abc.ABC):
    """One connection to one agent process.

    After :meth:`open`, ``reader`` (has ``readinto``) and ``writer`` (has
    ``write``/``flush``) carry frames. :meth:`close` ends the connection
    politely; :meth:`kill` ends the agent and everything it started.
    :meth:`exit_reason` says, after the stream ended, why the agent ended.
    """

    location = "localhost"
    reader = None
    writer = None

    @abc.abstractmethod
    def open(self) -> None:
        ...

    @abc.abstractmethod
    def close(self) -> None:
        ...

    @abc.abstractmethod
    def kill(self, grace: float) -> None:
        ...

    @abc.abstractmethod
    def exit_reason(self, timeout: float) -> str:
        ...
