"""The agent: the process that hosts jobs for a kernel, and its entry points.

``main`` (a process job's agent, and the loop of every agent), ``detached``
(a session process), ``forkserver`` (forks warm agents), ``relay`` (a session
reached over SSH), ``listing`` (the sessions on a computer) and the services
they use: the job service (``jobservice``), the outbox, signals, the process
group. Like :mod:`jobmagics.core`, which holds what a job is and how it runs,
everything here imports only the standard library and ``core``, and travels
by source (``jobmagics/transport/bootstrap.py``), so modules import each
other relatively.
"""
