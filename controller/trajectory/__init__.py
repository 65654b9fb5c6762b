"""OpenHands trajectories: a run exported as OpenHands' trajectory JSON, and read back.

The format is what OpenHands writes to `save_trajectory_path` and reads from
`replay_trajectory_path` (`shapes`). `export` turns a run's events into it and `saving`
writes the file; `reading` turns a trajectory, ours or OpenHands', into the `Recording`
replay runs (`recording`, which also builds one from our own event log).

Modules depend one way: shapes < command_text < export < saving; recording < reading.
This package re-exports what other modules import.
"""

from controller.trajectory.command_text import command_text, split_command_text
from controller.trajectory.export import encode_trajectory, to_trajectory
from controller.trajectory.reading import from_trajectory
from controller.trajectory.recording import (
    RecordedMessage,
    RecordedStep,
    Recording,
    ReplayTurn,
    recording_from_events,
)
from controller.trajectory.saving import export_trajectory, read_run, save_trajectory
from controller.trajectory.shapes import (
    ActionEvent,
    ChatCompletion,
    CmdMetadata,
    CmdOutputExtras,
    ObservationEvent,
    TrajectoryError,
    TrajectoryEvent,
)

__all__ = [
    "ActionEvent",
    "ChatCompletion",
    "CmdMetadata",
    "CmdOutputExtras",
    "ObservationEvent",
    "RecordedMessage",
    "RecordedStep",
    "Recording",
    "ReplayTurn",
    "TrajectoryError",
    "TrajectoryEvent",
    "command_text",
    "encode_trajectory",
    "export_trajectory",
    "from_trajectory",
    "read_run",
    "recording_from_events",
    "save_trajectory",
    "split_command_text",
    "to_trajectory",
]
