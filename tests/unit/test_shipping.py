import fractions
import functools
import sqlite3

import pytest

from jobmagics.ship import shipping
from jobmagics.core import serialize, wire
from jobmagics.errors import ShipError, UserInputError


def unpack(description, buffers):
    return serialize.loads(wire.payload_from_control(description, buffers))


def scale(values, factor=1):
    return [v * factor for v in values]


def test_code_request_ships_each_variable_and_records_it():
    variables = {"n": 3, "names": ["a", "b"], "ratio": fractions.Fraction(1, 3)}
    request, buffers, shipped = shipping.code_request("n * 2", "import math", variables, "n * 2", "doubler")
    assert request["code"] == "n * 2" and request["init"] == "import math"
    assert request["command"] == "n * 2" and request["name"] == "doubler"
    assert set(request["variables"]) == set(variables)
    for key, value in variables.items():
        assert unpack(request["variables"][key], buffers) == value
    assert shipped["n"]["type"] == "int" and shipped["names"]["type"] == "list"
    assert shipped["ratio"]["type"] == "fractions.Fraction"
    for key, value in variables.items():
        payload = serialize.dumps(value)
        assert shipped[key] == {"type": shipped[key]["type"], "codec": payload.codec, "bytes": payload.nbytes}
    wire.loads_control(wire.dumps_control(request))  # the request is plain control data


def test_code_request_without_variables():
    request, buffers, shipped = shipping.code_request("1 + 1", None, {}, "1 + 1", None)
    assert request["variables"] == {} and buffers == [] and shipped == {}


def test_large_arrays_travel_as_frame_buffers():
    numpy = pytest.importorskip("numpy")
    array = numpy.arange(100_000, dtype="int64")
    request, buffers, shipped = shipping.code_request("a.sum()", None, {"a": array}, "a.sum()", None)
    description = request["variables"]["a"]
    assert [description["data"]] + description["buffers"] == list(range(len(buffers)))  # pickle stream, then the array
    assert memoryview(buffers[1]).nbytes == array.nbytes
    assert shipped["a"]["type"] == "numpy.ndarray" and shipped["a"]["codec"] == serialize.PICKLE
    assert shipped["a"]["bytes"] >= array.nbytes
    assert (unpack(request["variables"]["a"], buffers) == array).all()


def test_notebook_functions_go_by_dill():
    namespace = {"__name__": "__main__"}
    exec("def triple(x):\n    return 3 * x\n", namespace)
    request, buffers, shipped = shipping.code_request("triple(2)", None, {"triple": namespace["triple"]}, "", None)
    assert shipped["triple"] == {"type": "function", "codec": serialize.DILL, "bytes": shipped["triple"]["bytes"]}
    assert unpack(request["variables"]["triple"], buffers)(5) == 15


def test_a_variable_that_cannot_be_shipped_is_named_with_its_type():
    variables = {"fine_value": 1, "gen": (i for i in range(3)), "after": 2}
    with pytest.raises(ShipError) as info:
        shipping.code_request("list(gen)", None, variables, "list(gen)", None)
    error = info.value
    assert isinstance(error, UserInputError) and isinstance(error, ValueError)
    assert (error.name, error.type_name) == ("gen", "generator")
    message = str(error)
    assert message.startswith("cannot send variable 'gen' (type generator) to the job: ")
    assert "fine_value" not in message and "after" not in message
    assert error.__cause__ is None and error.__suppress_context__


def test_the_type_of_an_object_outside_builtins_is_named_with_its_module():
    connection = sqlite3.connect(":memory:")
    try:
        with pytest.raises(ShipError) as info:
            shipping.code_request("db", None, {"db": connection}, "db", None)
    finally:
        connection.close()
    assert (info.value.name, info.value.type_name) == ("db", "sqlite3.Connection")
    assert "(type sqlite3.Connection)" in str(info.value)


def test_call_request_ships_the_callable_and_its_arguments():
    request, buffers, shipped = shipping.call_request(scale, [[1, 2, 3]], {"factor": 10}, "scale(...)", "scaler")
    assert request["command"] == "scale(...)" and request["name"] == "scaler"
    fn = unpack(request["fn"], buffers)
    args = unpack(request["args"], buffers)
    kwargs = unpack(request["kwargs"], buffers)
    assert fn is scale  # a function of an importable module goes by reference
    assert args == ([1, 2, 3],) and kwargs == {"factor": 10}
    assert fn(*args, **kwargs) == [10, 20, 30]
    assert set(shipped) == {"scale", "args", "kwargs"}
    assert shipped["scale"]["type"] == "function" and shipped["args"]["type"] == "tuple"
    assert shipped["kwargs"]["type"] == "dict"


def test_call_request_for_a_lambda_goes_by_dill():
    request, buffers, shipped = shipping.call_request(lambda x: x + 1, (1,), {}, "", None)
    assert shipped["<lambda>"]["codec"] == serialize.DILL
    assert unpack(request["fn"], buffers)(*unpack(request["args"], buffers)) == 2


def test_call_request_for_a_callable_without_a_name():
    request, buffers, shipped = shipping.call_request(functools.partial(scale, factor=2), ([4],), {}, "", None)
    assert shipped["function"]["type"] == "functools.partial"
    assert unpack(request["fn"], buffers)(*unpack(request["args"], buffers)) == [8]


def test_call_request_names_an_argument_that_cannot_be_shipped():
    with pytest.raises(ShipError) as info:
        shipping.call_request(scale, [(i for i in range(2))], {}, "", None)
    assert info.value.name == "args" and info.value.type_name == "tuple"


def test_references_for_thread_jobs_serialize_nothing():
    big = list(range(1000))
    assert shipping.references({"big": big, "ratio": fractions.Fraction(1, 2), "gen": (i for i in [])}) == {
        "big": {"type": "list", "codec": "reference", "bytes": 0},
        "ratio": {"type": "fractions.Fraction", "codec": "reference", "bytes": 0},
        "gen": {"type": "generator", "codec": "reference", "bytes": 0},
    }
