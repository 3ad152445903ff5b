"""Live ipywidgets views of jobs and sessions, and what feeds them."""
