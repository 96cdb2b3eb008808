"""User-facing errors.

Anything the user can fix (a missing dataset, a bad ``--set`` key, an unknown benchmark) is raised
as :class:`HnetError` with a one-paragraph message that names the problem and the fix. The CLI
prints such errors without a traceback; everything else is a bug and keeps its traceback. A full
disk or a missing permission is the user's to fix too: :func:`os_error_message` turns such an
``OSError`` into one paragraph.
"""

import errno
import os

# errno → what the user can do about it
DISK_ERRORS = {
    errno.ENOSPC: "free space on that file system",
    errno.EDQUOT: "free space or raise your quota on that file system",
    errno.EACCES: "make it writable (and its directory) for this user",
    errno.EPERM: "make it writable (and its directory) for this user",
    errno.EROFS: "remount that read-only file system writable",
}


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


def os_error_message(e: OSError) -> str | None:
    """One paragraph for a full disk, an exceeded quota or a missing permission (naming the
    path and what to do); None for any other ``OSError``, which stays a bug."""
    if e.errno not in DISK_ERRORS:
        return None
    path = e.filename if e.filename is not None else "a file"
    return (
        f"cannot write {path}: {os.strerror(e.errno)}. To continue, {DISK_ERRORS[e.errno]} "
        "or write elsewhere (another --out), then run the same command again: files written "
        "before are intact, and a training job resumes from its last checkpoint."
    )
