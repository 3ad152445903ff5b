import pytest

from jobmagics.ship.capture import free_names, notebook_names
from jobmagics.errors import CodeSyntaxError


@pytest.mark.parametrize("code, expected", [
    ("x + y", {"x", "y"}),
    ("x = 1\nx + y", {"y"}),
    ("y = y + 1", {"y"}),
    ("def f():\n    return data\nf()", {"data"}),
    ("def f():\n    return data\ndata = 3\nf()", set()),
    ("[v * k for v in values]", {"values", "k"}),
    ("import numpy as np\nnp.zeros(n)", {"n"}),
    ("for i in range(3):\n    total = total + i", {"total"}),
    ("class C:\n    size = limit\n", {"limit"}),
    ("lambda a: a + b", {"b"}),
    ("print(len(items))", {"items"}),
])
def test_free_names(code, expected):
    assert free_names(code) == expected


def test_notebook_names_skip_hidden_and_private_names_but_see_shadowed_builtins():
    marker = object()
    user_ns = {"x": 1, "_": 2, "In": marker, "max": 9, "unused": 3}
    found = notebook_names(["x + _ + len(In) + max"], user_ns, hidden={"In": marker})
    assert found == {"x": 1, "max": 9}


def test_code_that_does_not_parse_is_one_line_error():
    with pytest.raises(CodeSyntaxError, match=r"job code does not parse \(line 1\)"):
        free_names("1 +")


@pytest.mark.parametrize("code, expected", [
    ("with open(path) as fh:\n    fh.read()", {"path"}),
    ("try:\n    risky()\nexcept Exception as err:\n    print(err, fallback)", {"risky", "fallback"}),
    ("while n > 0:\n    n = n - 1", {"n"}),
])
def test_compound_statements_bind_in_execution_order(code, expected):
    assert free_names(code) == expected


def test_analyses_are_remembered_but_every_caller_gets_its_own_set():
    from jobmagics.ship import capture

    first = free_names("alpha + beta_remembered")
    first.add("changed by a caller")
    hits = capture._names_read.cache_info().hits
    assert free_names("alpha + beta_remembered") == {"alpha", "beta_remembered"}
    assert capture._names_read.cache_info().hits == hits + 1


def test_code_that_does_not_parse_fails_every_time_and_names_what_it_was():
    from jobmagics.ship import capture

    for what in ("job code", "init code", "job code"):
        with pytest.raises(CodeSyntaxError, match="%s does not parse" % what):
            capture.check("1 +", what)
