"""The job core: what a job is and how it runs, the same code wherever jobs run.

The model (states, Job, registry, names, callbacks, errors, the job table),
records and their delivery, the protocol (wire, serialize, textpipe), running
work (runner, thread host, workers, context, rich output, figures, tqdm, shell
escapes) and the six verbs (``verbs``; ``shim``, the ``jobmagics`` job code
sees outside the kernel). Everything here imports only the standard library
(dill, IPython and matplotlib lazily, when present) and itself, relatively:
the kernel imports it as ``jobmagics.core``, and it travels by source with
the agent (``jobmagics/agent``) as ``_jobmagics.core`` (see
``jobmagics/transport/bootstrap.py``).
"""
