"""The errors the job core raises; ``jobmagics/errors.py`` draws the whole tree."""
from __future__ import annotations


class JobmagicsError(Exception):
    """Base of every error jobmagics raises on purpose."""


class UserInputError(JobmagicsError, ValueError):
    """A user's request that cannot be done as asked; shown as one line, nothing changed."""


class JobNotFoundError(UserInputError, LookupError):
    """No job matches an id, a name or an instance id."""


class JobStateError(UserInputError):
    """The job's state forbids the request (e.g. removing a running job without force)."""


class SerializationError(JobmagicsError):
    """An object could not be serialized or deserialized."""


class ProtocolError(JobmagicsError):
    """The peer sent something that is not a frame of this protocol version."""


class JobError(JobmagicsError):
    """An uncaught exception inside a job, carried as text from wherever the job ran.

    ``ename``/``evalue`` name the original exception, ``traceback`` is its full
    traceback text as formatted where it was raised, ``computer`` says where.
    """

    def __init__(self, ename, evalue, traceback="", computer=None, job_name=None):
        super().__init__("%s: %s" % (ename, evalue))
        self.ename = ename
        self.evalue = evalue
        self.traceback = traceback
        self.computer = computer
        self.job_name = job_name

    @classmethod
    def from_record_data(cls, data, computer=None, job_name=None):
        return cls(data.get("ename", "Error"), data.get("evalue", ""), data.get("traceback", ""),
                   computer, job_name)

    def _render_traceback_(self):
        # IPython shows these lines instead of a local traceback of this object.
        where = []
        if self.job_name:
            where.append("job %s" % self.job_name)
        if self.computer:
            where.append("on %s" % self.computer)
        head = ["Error in %s:" % " ".join(where)] if self.job_name else (
            ["Error on %s:" % self.computer] if self.computer else [])
        body = self.traceback.rstrip("\n").splitlines() or [str(self)]
        return head + body

    def __reduce__(self):
        return (JobError, (self.ename, self.evalue, self.traceback, self.computer, self.job_name))
