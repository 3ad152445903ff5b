"""Every error jobmagics raises on purpose, in one tree.

::

    JobmagicsError
    ├── UserInputError (also ValueError)      a request that cannot be done as asked;
    │   │                                     magics show it as one line and change nothing
    │   ├── JobNotFoundError (also LookupError)
    │   ├── JobStateError                     e.g. removing a running job without force
    │   ├── CodeSyntaxError                   job code that does not parse
    │   └── ShipError                         a variable that cannot be sent to the job
    ├── SerializationError                    an object could not be (de)serialized
    ├── AgentStartError                       the process hosting a job could not start
    ├── ProtocolMismatchError                 the agent speaks another protocol version
    └── JobError                              an uncaught exception inside a job,
                                              with its traceback text from where it ran
"""
from __future__ import annotations

from .agent.errors import (
    JobError,
    JobmagicsError,
    JobNotFoundError,
    JobStateError,
    SerializationError,
    UserInputError,
)


class CodeSyntaxError(UserInputError):
    """Job code that does not parse; raised before anything starts."""


class ShipError(UserInputError):
    """A variable the job reads cannot be serialized for another process."""

    def __init__(self, name, type_name, reason):
        super().__init__("cannot send variable %r (type %s) to the job: %s" % (name, type_name, reason))
        self.name = name
        self.type_name = type_name


class AgentStartError(JobmagicsError):
    """The process that should host a job could not be started or did not answer."""


class ProtocolMismatchError(AgentStartError):
    """The agent at the other end speaks a different protocol version."""


__all__ = [
    "JobmagicsError", "UserInputError", "JobNotFoundError", "JobStateError", "CodeSyntaxError",
    "ShipError", "SerializationError", "AgentStartError", "ProtocolMismatchError", "JobError",
]
