import math
import pickle
import socket

import numpy as np
import pytest

from jobmagics.core import serialize
from jobmagics.core.errors import SerializationError


def roundtrip(obj):
    payload = serialize.dumps(obj)
    return payload, serialize.loads(payload)


def test_plain_objects_use_pickle():
    payload, value = roundtrip({"a": [1, 2.5, "x"]})
    assert payload.codec == serialize.PICKLE and value == {"a": [1, 2.5, "x"]}


def test_numpy_buffers_travel_out_of_band():
    array = np.arange(1_000_000, dtype=np.float64)
    payload, value = roundtrip(array)
    assert len(payload.buffers) == 1 and memoryview(payload.buffers[0]).nbytes == array.nbytes
    assert len(payload.data) < 1000
    np.testing.assert_array_equal(value, array)


def test_modules_go_by_name():
    payload, value = roundtrip(math)
    assert value is math and payload.codec == serialize.PICKLE


def test_notebook_functions_and_lambdas_use_dill():
    namespace = {"__name__": "__main__"}
    exec("scale = 3\ndef triple(v):\n    return v * scale\n", namespace)
    payload = serialize.dumps(namespace["triple"])
    assert payload.codec == serialize.DILL
    # Loaded where __main__ has no 'triple' nor 'scale', as in another process.
    assert serialize.loads(payload)(2) == 6
    assert serialize.loads(serialize.dumps(lambda v: v + 1))(1) == 2


def test_unserializable_objects_raise_with_their_type():
    with socket.socket() as sock, pytest.raises(SerializationError, match="cannot serialize a socket"):
        serialize.dumps(sock)
    with pytest.raises(SerializationError, match="generator"):
        serialize.dumps(i for i in range(3))


def test_placeholder_is_plain_data():
    placeholder = serialize.placeholder_for(object(), "why")
    assert pickle.loads(pickle.dumps(placeholder))[0] == "object"


def test_a_big_bytes_value_travels_as_its_own_buffer_and_comes_back_as_bytes():
    value = b"\x00\xff" * serialize.BYTES_THRESHOLD
    payload = serialize.dumps(value)
    assert payload.codec == serialize.BYTES and payload.data == b""
    assert memoryview(payload.buffers[0]).obj is value  # not copied on the way out
    back = serialize.loads(serialize.Payload(payload.codec, payload.data, [bytearray(payload.buffers[0])]))
    assert type(back) is bytes and back == value
    small = serialize.dumps(b"small")
    assert small.codec == serialize.PICKLE


def test_an_object_of_the_job_core_made_in_a_shipped_agent_is_rebuilt_with_this_copy():
    import pickle

    from jobmagics.core.table import JobInfo, JobList

    data = {"id": 1, "name": "there", "job_type": "ThreadJob", "state": "Completed", "command": "1",
            "location": "localhost", "has_more_data": False}
    sent = pickle.dumps(JobList([JobInfo(data)]), protocol=0)  # module names as plain lines
    # What an agent running the shipped package _jobmagics.core writes:
    sent = sent.replace(b"\njobmagics.core.", b"\n_jobmagics.core.").replace(b"cjobmagics.core.", b"c_jobmagics.core.")
    assert b"_jobmagics.core.table" in sent
    received = serialize.loads(serialize.Payload(serialize.PICKLE, sent, []))
    assert type(received) is JobList and type(received[0]) is JobInfo
    assert received[0].name == "there" and received[0].state == "Completed"


@pytest.mark.parametrize("name, home", [
    ("_jobmagics.core.table", "jobmagics.core.table"), ("jobmagics.core.table", "jobmagics.core.table"),
    ("_jobmagics.agent.main", "jobmagics.agent.main"), ("_jobmagics_agent.table", "jobmagics.core.table"),
    ("_jobmagics.widgets", "_jobmagics.widgets"), ("jobmagics.api", "jobmagics.api"), ("numpy", "numpy"),
])
def test_the_shipped_names_come_home_and_nothing_else_changes(name, home):
    # _jobmagics_agent: what a session started by an earlier jobmagics (one flat package) calls the core.
    assert serialize.home_module(name) == home


def _notebook(monkeypatch, source):
    """Run ``source`` as a notebook cell would: its classes and functions live in this process's __main__."""
    import sys

    namespace = {"__name__": "__main__"}
    exec(source, namespace)
    for name, value in namespace.items():
        if not name.startswith("__"):
            monkeypatch.setattr(sys.modules["__main__"], name, value, raising=False)
    return namespace


def test_a_class_sent_by_value_comes_home_as_the_main_class_of_that_name(monkeypatch):
    payload = serialize.dumps([_notebook(monkeypatch, "class Point:\n    def __init__(self, x):\n"
                                                      "        self.x = x\n")["Point"](4)])
    assert payload.codec == serialize.DILL
    home = _notebook(monkeypatch, "class Point:\n    def __init__(self, x):\n        self.x = x\n")["Point"]
    (point,) = serialize.loads(payload)  # the class of this name in __main__ now: the notebook's own
    assert type(point) is home and point.x == 4
    assert pickle.loads(pickle.dumps(point)).x == 4


def test_a_class_or_function_this_main_lacks_stays_a_copy(monkeypatch):
    namespace = {"__name__": "__main__"}
    exec("class Elsewhere:\n    pass\ndef helper():\n    return 1\n", namespace)
    payload = serialize.dumps((namespace["Elsewhere"](), namespace["helper"]))
    _notebook(monkeypatch, "def helper():\n    return 2\n")  # same name, other code: not the same function
    instance, helper = serialize.loads(payload)
    assert type(instance).__name__ == "Elsewhere" and type(instance) is not namespace["Elsewhere"]
    assert helper() == 1


def test_a_function_with_the_same_name_and_code_comes_home(monkeypatch):
    notebook = _notebook(monkeypatch, "def helper(v):\n    return v + 1\n")
    assert serialize.loads(serialize.dumps(notebook["helper"])) is notebook["helper"]
