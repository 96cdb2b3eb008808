"""User-facing errors.

Anything the user can fix (a missing dataset, a bad ``--set`` key, an unknown benchmark) is raised
as :class:`HnetError` with a one-paragraph message that names the problem and the fix. The CLI
prints such errors without a traceback; everything else is a bug and keeps its traceback.
"""


class HnetError(Exception):
    """An error caused by input the user can correct; the message says how."""


class ConfigError(HnetError):
    """A problem with a job or study configuration (unknown key, bad value, unsupported pair)."""


class StudyError(ConfigError):
    """A study config that cannot be expanded into a grid (names, sweeps, combinations); the
    message names the offending key of the study config."""


class DataError(HnetError):
    """A dataset is missing, corrupt or cannot be downloaded."""


class JobInterrupted(HnetError):
    """SIGTERM/SIGINT arrived; a checkpoint was saved and the job can be resumed."""

    def __init__(self, message: str, signum: int) -> None:
        super().__init__(message)
        self.exit_code = 128 + signum
