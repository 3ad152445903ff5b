import pytest

from jobmagics.core.states import FINISHED, TRANSITIONS, JobState, derive_parent_state, parse_state


def test_states_compare_equal_to_their_names():
    assert JobState.Running == "Running"
    assert str(JobState.Failed) == "Failed"
    assert {s.value for s in JobState} == {
        "NotStarted", "Running", "Completed", "Failed", "Stopping", "Stopped", "Disconnected", "Blocked"}


def test_finished_states_have_no_way_out():
    for state in FINISHED:
        assert TRANSITIONS[state] == set()
        assert state.finished
    assert not JobState.Running.finished


def test_parse_state_is_case_insensitive_and_rejects_unknown_names():
    assert parse_state("completed") is JobState.Completed
    with pytest.raises(ValueError, match="unknown job state 'Done'"):
        parse_state("Done")


@pytest.mark.parametrize("children, parent", [
    (["Running", "Completed"], "Running"),
    (["Completed", "Failed", "Stopped"], "Failed"),
    (["Completed", "Stopped"], "Stopped"),
    (["Completed", "Completed"], "Completed"),
    (["NotStarted", "NotStarted"], "NotStarted"),
    (["NotStarted", "Completed"], "Running"),
    (["Disconnected", "Completed"], "Disconnected"),
    (["Blocked", "Running"], "Blocked"),
])
def test_parent_state_is_derived_from_children(children, parent):
    assert derive_parent_state(JobState(c) for c in children) == parent
