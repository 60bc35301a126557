"""The `_READY` doorbell of a feed's inbox: a trigger that a sender cannot jam.

Airflow's `DirectoryFileDeleteTrigger` fires when `_READY` appears in the inbox
and deletes it. It deletes whatever has that name, so a `_READY` that is a
directory makes its `unlink` raise: the watcher fails, and the feed hears no
doorbell until an operator restarts it. A symlink or a FIFO is deleted and
fires like a file.

`DoorbellTrigger` rings only for a regular file. Anything else named `_READY`
(a directory, a symlink, a FIFO, a socket, a device) is reported with a warning
and set aside: renamed, within the inbox, to `_READY.not-a-file.<UTC time>`, which
frees the name for the sender's next ring and keeps what the sender made for an
operator to look at (names starting with `_` are never delivery folders). The
rename never follows a link and never touches what is inside a directory. If the
entry cannot be renamed either, it is reported once and ignored, and the trigger
keeps watching. An entry that is not a ring does not fire: the ledger, not the
doorbell, says what is pending, and the next ring (or an asset event posted to
the REST API) processes every waiting delivery.
"""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import AsyncIterator, Hashable
from datetime import UTC, datetime
from typing import Any

from airflow.providers.standard.triggers.file import DirectoryFileDeleteTrigger
from airflow.triggers.base import TriggerEvent

SET_ASIDE_INFIX = ".not-a-file."

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISLNK, "a symbolic link"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


def kind_of(mode: int) -> str:
    """What a file mode is, in words ('a directory')."""
    for test, words in _KINDS:
        if test(mode):
            return words
    return "not a regular file"


class DoorbellTrigger(DirectoryFileDeleteTrigger):
    """Fire once when a regular file `filename` appears in `directory`, then delete it.

    Usable by an `AssetWatcher` (a `BaseEventTrigger`); triggers of the same directory
    and poke interval share one directory scan in the triggerer.
    """

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (f"{type(self).__module__}.{type(self).__qualname__}",
                {"directory": self.directory, "filename": self.filename,
                 "poke_interval": self.poke_interval})

    def shared_stream_key(self) -> Hashable | None:
        return ("penstat-doorbell", os.path.realpath(self.directory), self.poke_interval)

    async def filter_shared_stream(self, shared_stream: AsyncIterator[Any]
                                   ) -> AsyncIterator[TriggerEvent]:
        ignored: set[tuple[int, int]] = set()  # entries reported once and left alone
        async for snapshot in shared_stream:
            if self.filename not in snapshot["names"]:
                continue
            path = os.path.join(snapshot["directory"], self.filename)
            rang = await asyncio.to_thread(self._answer, path, ignored)
            if rang:
                self.log.info("doorbell %s rang: deleted it", path)
                yield TriggerEvent({"filepath": path})
                return

    def _answer(self, path: str, ignored: set[tuple[int, int]]) -> bool:
        """True if `path` was a regular file and is now deleted; never raises on the
        entry's account (the sender's), only the caller's cancellation ends the watch."""
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return False  # gone between the scan and now
        except OSError as failed:
            self.log.warning("doorbell %s cannot be examined (%s); watching on", path, failed)
            return False
        if stat.S_ISREG(st.st_mode):
            try:
                os.unlink(path)
            except FileNotFoundError:
                return False  # a sibling trigger or the sender removed it first
            except OSError as failed:
                if (st.st_dev, st.st_ino) not in ignored:
                    ignored.add((st.st_dev, st.st_ino))
                    self.log.warning("doorbell %s cannot be deleted (%s); it is ignored", path,
                                failed)
                return False
            return True
        self._set_aside(path, st, ignored)
        return False

    def _set_aside(self, path: str, st: os.stat_result, ignored: set[tuple[int, int]]) -> None:
        identity = (st.st_dev, st.st_ino)
        if identity in ignored:
            return
        kind = kind_of(st.st_mode)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
        aside = os.path.join(os.path.dirname(path),
                             f"{self.filename}{SET_ASIDE_INFIX}{stamp}")
        try:
            # same folder, same file system: one rename of the name itself (a link is
            # renamed, not followed; a directory moves whole, unread)
            os.rename(path, aside)
        except FileNotFoundError:
            return
        except OSError as failed:
            ignored.add(identity)
            self.log.warning("doorbell %s is %s, not a regular file, and cannot be set aside (%s): "
                        "it is ignored and does not ring; remove it so the sender's next "
                        "_READY can ring", path, kind, failed)
            return
        self.log.warning("doorbell %s is %s, not a regular file: it does not ring, and was set "
                    "aside as %s; a sender rings by creating a regular file", path, kind,
                    os.path.basename(aside))
