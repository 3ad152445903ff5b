import jobmagics


def test_public_names_are_pinned():
    assert sorted(jobmagics.__all__) == sorted([
        "start_job", "get_job", "receive_job", "wait_job", "stop_job", "remove_job",
        "new_session", "get_session", "remove_session", "invoke", "Session",
        "disconnect_session", "connect_session", "receive_session",
        "emit", "progress", "stop_requested", "Job", "JobState", "JobRegistry", "JobError",
        "JobmagicsError", "load_ipython_extension", "unload_ipython_extension",
    ])
    for name in jobmagics.__all__:
        assert hasattr(jobmagics, name)


def test_importing_jobmagics_does_not_import_ipython():
    import subprocess
    import sys
    code = "import sys, jobmagics; print('IPython' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "False", out.stderr
