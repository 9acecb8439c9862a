"""A bounded on-disk spool for batches the collector did not take.

/tmp survives warm invocations and an environment reset after a timeout or crash, so batches
spooled by one extension process are retried by the next one in the same environment. Files are
the gzip bodies as sent (same batch_id, so a retry is stored once), named
`<sequence>-<batch_id>-<events>.gz` so the oldest sorts first. When full, the oldest are deleted
and their events counted in `dropped_events`.
"""

from __future__ import annotations

import os
import time

from . import log

SUFFIX = ".gz"


def spool_name(sequence: int, batch_id: str, events: int) -> str:
    return "%020d-%s-%d%s" % (sequence, batch_id, events, SUFFIX)


def parse_spool_name(name: str) -> tuple[int, str, int] | None:
    if not name.endswith(SUFFIX):
        return None
    parts = name[: -len(SUFFIX)].split("-")
    if len(parts) != 3:
        return None
    try:
        return int(parts[0]), parts[1], int(parts[2])
    except ValueError:
        return None


class Spool:
    def __init__(self, directory: str, max_bytes: int) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self.dropped_events = 0
        self.dropped_batches = 0
        self.spooled_batches = 0
        self._sequence = time.time_ns()
        self._warned = False
        # False once a look found the folder empty, so the sender skips listdir() on every
        # flush; True at start because a previous process may have left batches.
        self.maybe_nonempty = True

    def _entries(self) -> list[tuple[str, int, int]]:
        """(file name, size, events), oldest first."""
        try:
            names = os.listdir(self.directory)
        except OSError:
            return []
        entries = []
        for name in sorted(names):
            parsed = parse_spool_name(name)
            if parsed is None:
                continue
            try:
                size = os.path.getsize(os.path.join(self.directory, name))
            except OSError:
                continue
            entries.append((name, size, parsed[2]))
        return entries

    @property
    def used_bytes(self) -> int:
        return sum(size for _name, size, _events in self._entries())

    def __len__(self) -> int:
        return len(self._entries())

    def put(self, batch_id: str, body: bytes, events: int, sequence: int | None = None) -> bool:
        """Keep a batch on disk; False when it cannot be kept (too big, disk error).
        `sequence` orders the batches (default: after every batch put so far)."""
        if len(body) > self.max_bytes:
            return False
        try:
            os.makedirs(self.directory, exist_ok=True)
            entries = self._entries()
            used = sum(size for _name, size, _events in entries)
            for name, size, dropped in entries:
                if used + len(body) <= self.max_bytes:
                    break
                self._remove(name)
                used -= size
                self.dropped_events += dropped
                self.dropped_batches += 1
            if sequence is None:
                self._sequence = max(self._sequence + 1, time.time_ns())
                sequence = self._sequence
            final = os.path.join(self.directory, spool_name(sequence, batch_id, events))
            temporary = final + ".tmp"
            with open(temporary, "wb") as handle:
                handle.write(body)
            os.replace(temporary, final)
            self.spooled_batches += 1
            self.maybe_nonempty = True
            return True
        except OSError as exc:
            if not self._warned:
                self._warned = True
                log.warning("cannot spool unsent batches to %s: %s" % (self.directory, exc))
            return False

    def take_oldest(self) -> tuple[str, bytes, int, int] | None:
        """Remove and return the oldest spooled batch (batch_id, body, events, sequence)."""
        for name, _size, events in self._entries():
            path = os.path.join(self.directory, name)
            claimed = path + ".claimed-%d" % os.getpid()
            try:
                # Another process of the same function may share the folder (the emulator):
                # the rename claims the file, so it is sent by one of them.
                os.rename(path, claimed)
            except OSError:
                continue
            try:
                with open(claimed, "rb") as handle:
                    body = handle.read()
            except OSError:
                continue
            finally:
                self._remove(os.path.basename(claimed))
            parsed = parse_spool_name(name)
            assert parsed is not None
            return parsed[1], body, events, parsed[0]
        self.maybe_nonempty = False
        return None

    def _remove(self, name: str) -> None:
        try:  # noqa: SIM105
            os.remove(os.path.join(self.directory, name))
        except OSError:
            pass
