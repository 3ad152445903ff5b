"""Sessions: persistent connections to agents that host jobs, and their API."""
