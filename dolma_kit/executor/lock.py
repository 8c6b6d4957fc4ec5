"""One run per destination: a lock on each output root while `run_shards` writes there.

Two runs writing one destination race (each removes the other's "stale" temp files, both write the same
shards), so the second is refused at once: "ROOT: in use by PID N on HOST since TIME". The lock is
`<root>/.dolma-kit.lock`, holding the holder's PID, host and start time, and is removed when the run ends.

- Local (and shared) filesystems: an exclusive `flock` on that file. The kernel drops it when the holder dies,
  however it dies (SIGKILL, a crash), so a lock left behind by a dead run is simply taken over. (A filesystem
  without `flock` runs unlocked.)
- S3: an object created only if absent (a conditional put). Nobody can ask S3 whether the holder still runs,
  so the holder renews it every `S3_RENEW_SECONDS`; a lock not renewed for `S3_STALE_SECONDS` is taken over,
  and so is one whose holder was on this host and whose PID is gone. The message says so, and names the
  object to delete to take the lock at once.
- Other URL schemes have no lock.

Several passes of one stage take the lock in turn (one `run_shards` call each); a run's passes are not one
critical section. See docs/reliability.md.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlparse

from dolma_kit import storage
from dolma_kit.errors import DolmaKitError

LOCK_NAME = ".dolma-kit.lock"
S3_RENEW_SECONDS = 300.0
S3_STALE_SECONDS = 3600.0
_NO_FLOCK = (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL)
_HELD: set[str] = set()  # tokens of the locks this process holds (a lock of our own PID not in it is stale)


@dataclass(frozen=True, slots=True)
class Holder:
    """Who holds a lock: written into the lock file or object."""

    pid: int
    host: str
    since: float
    token: str

    @classmethod
    def me(cls) -> Holder:
        return cls(os.getpid(), socket.gethostname(), time.time(), uuid.uuid4().hex)

    @classmethod
    def parse(cls, text: str) -> Holder | None:
        try:
            data = json.loads(text)
            return cls(int(data["pid"]), str(data["host"]), float(data["since"]), str(data["token"]))
        except (ValueError, TypeError, KeyError):
            return None

    def dumps(self) -> str:
        return json.dumps(asdict(self)) + "\n"

    def gone(self) -> bool:
        """True when the holder is known to have ended: it ran on this host and its PID does not (or it is
        this process, which does not hold it)."""
        if self.host != socket.gethostname():
            return False
        if self.pid == os.getpid():
            return self.token not in _HELD
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False  # another user's live process
        return False

    def describe(self) -> str:
        since = datetime.fromtimestamp(self.since).strftime("%Y-%m-%d %H:%M:%S")
        return f"PID {self.pid} on {self.host} since {since}"


class DestinationInUse(DolmaKitError):
    """Another run holds the destination's lock."""

    def __init__(self, root: str, holder: Holder | None, note: str = "") -> None:
        who = holder.describe() if holder is not None else "another run (it is just starting)"
        super().__init__(
            f"{root}: in use by {who}; wait for that run to finish (or stop it), or choose another "
            f"destination{note}"
        )


@contextlib.contextmanager
def destination_locks(roots: list[str]) -> Iterator[None]:
    """Hold the lock of every root (in the order given) for the block; released on every way out."""
    with contextlib.ExitStack() as stack:
        for root in roots:
            stack.enter_context(_lock(root))
        yield


@contextlib.contextmanager
def _lock(root: str) -> Iterator[None]:
    root = root or "."
    if root.startswith("s3://"):
        lock: _LocalLock | _S3Lock | None = _S3Lock(root)
    elif storage.is_remote(root):
        lock = None
    else:
        lock = _LocalLock(root)
    if lock is None:
        yield
        return
    lock.acquire()
    _HELD.add(lock.holder.token)
    try:
        yield
    finally:
        _HELD.discard(lock.holder.token)
        lock.release()


class _LocalLock:
    def __init__(self, root: str) -> None:
        self.root = root
        self.path = os.path.join(storage.local_path(root), LOCK_NAME)
        self.holder = Holder.me()
        self.fd = -1

    def acquire(self) -> None:
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                held = os.read(fd, 4096).decode("utf-8", "replace")
                os.close(fd)
                raise DestinationInUse(self.root, Holder.parse(held)) from None
            except OSError as exc:
                if exc.errno not in _NO_FLOCK:
                    os.close(fd)
                    raise storage.StorageError(
                        self.path, f"cannot lock: {storage.os_reason(exc)}", exc.errno
                    ) from exc
                # a filesystem without flock (some FUSE mounts): run unlocked rather than not at all
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:  # not a file that its last holder removed after we opened it
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.pwrite(fd, self.holder.dumps().encode(), 0)
        self.fd = fd

    def release(self) -> None:
        with contextlib.suppress(OSError):
            os.remove(self.path)  # while still locked: a waiter that opened it sees it is gone
        os.close(self.fd)


class _S3Lock:
    def __init__(self, root: str) -> None:
        self.root = root
        self.url = storage.join(root, LOCK_NAME)
        parsed = urlparse(self.url)
        self.bucket, self.key = parsed.netloc, parsed.path.lstrip("/")
        self.holder = Holder.me()
        self.stop = threading.Event()
        self.renewer: threading.Thread | None = None

    def _read(self, client: Any) -> tuple[Holder | None, str, float] | None:
        """(holder, ETag, seconds since last renewed) of the lock object, or None when there is none."""
        try:
            obj = client.get_object(Bucket=self.bucket, Key=self.key)
        except client.exceptions.NoSuchKey:
            return None
        age = (datetime.now(timezone.utc) - obj["LastModified"]).total_seconds()
        return Holder.parse(obj["Body"].read().decode("utf-8", "replace")), obj["ETag"], age

    def acquire(self) -> None:
        client = storage.s3_client()
        with storage.s3_errors(self.url, "cannot lock"):
            for _ in range(3):
                current = self._read(client)
                if current is None:
                    condition = {"IfNoneMatch": "*"}
                else:
                    holder, etag, age = current
                    if age < S3_STALE_SECONDS and not (holder is not None and holder.gone()):
                        raise DestinationInUse(self.root, holder, self._note(holder, age))
                    condition = {"IfMatch": etag}  # take over the stale lock, unless another run just did
                try:
                    client.put_object(Bucket=self.bucket, Key=self.key, Body=self.holder.dumps(), **condition)
                except client.exceptions.ClientError as exc:
                    if exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") in (409, 412):
                        continue  # lost a race for it: look again
                    raise
                break
            else:
                current = self._read(client)
                raise DestinationInUse(self.root, current[0] if current else None)
        self.renewer = threading.Thread(target=self._renew, name="dolma-kit lock", daemon=True)
        self.renewer.start()

    def _note(self, holder: Holder | None, age: float) -> str:
        host = f"from {holder.host} once PID {holder.pid} is gone, " if holder is not None else ""
        return (
            f" (an S3 lock cannot tell whether its holder still runs: it is taken over {host}or when not "
            f"renewed for {S3_STALE_SECONDS / 3600:g} h; last renewed {age / 60:.0f} min ago; delete "
            f"{self.url} to take it now)"
        )

    def _renew(self) -> None:
        while not self.stop.wait(S3_RENEW_SECONDS):
            with contextlib.suppress(Exception):  # a missed renewal is retried; S3_STALE_SECONDS allows many
                storage.s3_client().put_object(Bucket=self.bucket, Key=self.key, Body=self.holder.dumps())

    def release(self) -> None:
        self.stop.set()
        if self.renewer is not None:
            self.renewer.join()
        # best effort: if S3 is unreachable now, the next run from this host takes the lock over (PID gone)
        with contextlib.suppress(Exception):
            client = storage.s3_client()
            current = self._read(client)
            if current is not None and current[0] == self.holder:
                client.delete_object(Bucket=self.bucket, Key=self.key)
