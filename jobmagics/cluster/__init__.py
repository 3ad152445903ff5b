"""Cluster sessions: jobmagics jobs on a Dask distributed cluster (spec section 5, "Beyond one machine").

:mod:`.worker` runs in the workers (a job in a thread of the worker, with
jobmagics' own runner; its records kept there with sequence numbers until a
kernel received them); :mod:`.session` is the kernel's side (the session, its
host, the poller that brings records and states over).
"""

INSTALL_HINT = 'cluster sessions need Dask distributed: pip install "jobmagics[dask]"'


def require_distributed():
    """The ``distributed`` module, or a one-line error saying how to install it."""
    try:
        import distributed
    except ImportError:
        from ..errors import UserInputError

        raise UserInputError(INSTALL_HINT) from None
    return distributed
