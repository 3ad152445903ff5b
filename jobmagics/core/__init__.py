"""The part of jobmagics that hosts jobs: stdlib only, shippable by source.

Everything in this package imports only the standard library (and dill when it
is present), so the same code serves a thread job in the kernel, the process
behind a ``BackgroundJob``, and later a session on another computer, where it
arrives by source over the connection (see ``jobmagics/transport/bootstrap.py``).
Modules here import each other relatively for that reason.
"""
