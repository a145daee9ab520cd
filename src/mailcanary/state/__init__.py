"""Files under `state_dir`: one way to write them (atomic, 0600, never through a symlink),
one way to read them (a file that is not what we wrote is moved aside, never fatal)."""

from mailcanary.state.files import (
    BatchedState,
    JsonState,
    StateDirError,
    StateInvalid,
    check_state_dir,
    load_json,
    move_aside,
    private_dir,
    read_state,
    write_atomic,
)

__all__ = [
    "BatchedState",
    "JsonState",
    "StateDirError",
    "StateInvalid",
    "check_state_dir",
    "load_json",
    "move_aside",
    "private_dir",
    "read_state",
    "write_atomic",
]
