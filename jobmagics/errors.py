"""Every error jobmagics raises on purpose, in one tree.

::

    JobmagicsError
    ├── UserInputError (also ValueError)      a request that cannot be done as asked;
    │   │                                     magics show it as one line and change nothing
    │   ├── JobNotFoundError (also LookupError)
    │   ├── SessionNotFoundError (also LookupError)
    │   ├── JobStateError                     e.g. removing a running job without force
    │   ├── CodeSyntaxError                   job code that does not parse
    │   ├── ShipError                         a variable that cannot be sent to the job
    │   └── SSHError                          a computer that cannot be reached or logged in to
    │       └── HostKeyError                  its host key is unknown or changed
    ├── SerializationError                    an object could not be (de)serialized
    ├── ProtocolError                         the peer sent something that is not a frame
    ├── AgentStartError                       the process hosting a job could not start
    │   └── ProtocolMismatchError             the agent speaks another protocol version
    ├── LinkEndedError                        the connection to an agent ended while waiting
    ├── RemoteCallError                       an agent refused or failed a call
    └── JobError                              an uncaught exception inside a job,
                                              with its traceback text from where it ran

``StopJob`` (``jobmagics/core/runner.py``) is no error: like KeyboardInterrupt it
derives from BaseException only, so that ``except Exception`` in job code cannot
swallow a stop.

The job core's errors (``jobmagics/core/errors.py``) are part of this tree;
they live there because the agent, which is shipped by source, raises them too.
"""
from __future__ import annotations

from .core.errors import (
    JobError,
    JobmagicsError,
    JobNotFoundError,
    JobStateError,
    ProtocolError,
    SerializationError,
    UserInputError,
)


class SessionNotFoundError(UserInputError, LookupError):
    """No session matches an id or a name."""


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


class LinkEndedError(JobmagicsError):
    """The connection to the agent ended while waiting for it."""


class RemoteCallError(JobmagicsError):
    """The agent refused or failed a call; ``user_error`` when the request itself was wrong."""

    def __init__(self, message, user_error=False):
        super().__init__(message)
        self.user_error = user_error


__all__ = [
    "JobmagicsError", "UserInputError", "JobNotFoundError", "SessionNotFoundError", "JobStateError",
    "CodeSyntaxError", "ShipError", "SerializationError", "ProtocolError", "AgentStartError",
    "ProtocolMismatchError", "LinkEndedError", "RemoteCallError", "JobError",
]
