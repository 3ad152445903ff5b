"""Ways to reach an agent: a local subprocess now; SSH and detached sessions reuse the contract."""
