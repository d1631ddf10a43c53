"""``aiodynkv export`` and ``aiodynkv import``: batched copies between a store and JSON Lines.

Both work on any `AsyncDynamoKV` (`InMemoryKV` included) and its namespaces.

- Export reads every item with its value and expiry in one paginated Scan
  (``items``). Keys are written sorted, so exporting an unchanged table twice gives
  the same file.
- Import reads the file in batches and reads each batch's keys from the table in one
  batched read (BatchGetItem, values with their expiry). A key that already holds the
  identical item (same type, value and expiry) is skipped (unless ``overwrite``), so
  running an import again, or again after an interruption, costs about a read of the
  file's keys and writes only what is missing or different. Items are grouped by
  expiry and written with ``set_many``; counters are written with ``set_counter``, one
  atomic write each.

The file format, JSON Lines, one item per line:

::

    {"key": "user:1", "value": "alice"}
    {"key": "avatar:1", "value_b64": "iVBORw0KGgo=", "expires_at": 1767225600}
    {"key": "hits", "value": 42}

- ``key``: the key (inside the namespace, if one is set), a non-empty string.
- ``value``: a str value as a JSON string, or a counter as a JSON integer.
- ``value_b64``: instead of ``value``, a bytes value in standard base64 (RFC 4648 §4).
- ``expires_at``: only for an item with a TTL: epoch seconds (an integer).

No other fields are accepted, so a typo such as ``"ttl"`` is reported, not ignored.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, TextIO

from aiodynkv._errors import BatchIncompleteError, KVValidationError
from aiodynkv._protocol import KVStore, StoredItem, Value

if TYPE_CHECKING:
    from aiodynkv._store import AsyncDynamoKV

__all__ = [
    "FIELDS",
    "Record",
    "RecordError",
    "Reporter",
    "Summary",
    "count_lines",
    "decode",
    "encode",
    "export_items",
    "import_items",
]

# -- the file format: one record per line ------------------------------------------------

FIELDS = ("key", "value", "value_b64", "expires_at")


class RecordError(ValueError):
    """A line is not a valid record; the message says why."""


@dataclass(frozen=True, slots=True)
class Record:
    """One item: its key, its value (str, bytes or a counter's int) and its expiry.

    Attributes:
        key: The key, as the store sees it (inside its namespace).
        value: str, bytes, or int for a counter.
        expires_at: Epoch second at which the item expires; None when it never does.
    """

    key: str
    value: Value
    expires_at: int | None = None


def encode(record: Record) -> str:
    """The record as one line of JSON (without the newline)."""
    obj: dict[str, object] = {"key": record.key}
    if isinstance(record.value, bytes):
        obj["value_b64"] = base64.b64encode(record.value).decode("ascii")
    else:
        obj["value"] = record.value
    if record.expires_at is not None:
        obj["expires_at"] = record.expires_at
    return json.dumps(obj, ensure_ascii=False)


def decode(line: str) -> Record:
    """Parse one line.

    Raises:
        RecordError: The line is not a JSON object with the fields above.
    """
    try:
        obj = json.loads(line)
    except ValueError as exc:
        raise RecordError(f"not JSON ({exc})") from None
    if not isinstance(obj, dict):
        raise RecordError(f"expected a JSON object, got {type(obj).__name__}")
    unknown = sorted(set(obj) - set(FIELDS))
    if unknown:
        raise RecordError(f"unknown field {unknown[0]!r} (allowed: {', '.join(FIELDS)})")
    key = obj.get("key")
    if not isinstance(key, str) or not key:
        raise RecordError('"key" must be a non-empty string')
    return Record(key, _value_of(obj), _expiry_of(obj.get("expires_at")))


def _value_of(obj: dict[str, object]) -> Value:
    if ("value" in obj) == ("value_b64" in obj):
        raise RecordError('give exactly one of "value" and "value_b64"')
    if "value_b64" in obj:
        encoded = obj["value_b64"]
        if not isinstance(encoded, str):
            raise RecordError('"value_b64" must be a base64 string')
        try:
            return base64.b64decode(encoded, validate=True)
        except binascii.Error as exc:
            raise RecordError(f'"value_b64" is not valid base64 ({exc})') from None
    value = obj["value"]
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise RecordError(
            '"value" must be a string, or an integer for a counter '
            '(bytes go in "value_b64"; encode other JSON as a string)'
        )
    return value


def _expiry_of(raw: object) -> int | None:
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not math.isfinite(raw):
        raise RecordError('"expires_at" must be epoch seconds (a number)')
    return math.ceil(raw)


# -- export and import -------------------------------------------------------------------

# An expiry is written as ttl = expires_at - now - margin: the store rounds the
# expiry up (ceil(now + ttl)), so without the margin it could land one second late.
_EXPIRY_MARGIN = 0.5


class Reporter(Protocol):
    """Where progress and per-item problems go (a progress bar, or nothing)."""

    def phase(self, description: str, total: int | None) -> None:
        """Start a phase of `total` steps (None: unknown)."""

    def advance(self, steps: int) -> None:
        """Count `steps` done in the current phase."""

    def warn(self, message: str) -> None:
        """Report a problem with one item; the transfer goes on."""


@dataclass
class Summary:
    """What a transfer did. ``read == written + skipped + failed`` once it has finished.

    Attributes:
        read: Keys listed (export) or non-blank lines read (import).
        written: Items written (lines for export, items for import).
        skipped: Items left out: gone or expired by the time they were read or
            written, identical in the table already, or superseded by a later line.
        invalid: Lines or items that cannot be stored (bad JSON, a bad key, too large).
        unwritten: Items the server did not take before the batch deadline.
    """

    read: int = 0
    written: int = 0
    skipped: int = 0
    invalid: int = 0
    unwritten: int = 0

    @property
    def failed(self) -> int:
        """Items that failed, for either reason."""
        return self.invalid + self.unwritten

    def line(self, verb: str, seconds: float) -> str:
        """One line for people: ``imported: 10 read, 9 written, 1 skipped, 0 failed (0.4 s)``."""
        return (
            f"{verb}: {self.read} read, {self.written} written, {self.skipped} skipped, "
            f"{self.failed} failed ({seconds:.1f} s)"
        )


async def export_items(
    kv: KVStore,
    out: TextIO,
    reporter: Reporter,
    summary: Summary,
    *,
    prefix: str | None = None,
) -> None:
    """Write every unexpired item of `kv` (under `prefix`) to `out`, one JSON line each.

    One paginated Scan reads values and expiry together; the lines are sorted by key,
    so exporting an unchanged table twice gives the same file.

    Raises:
        KVError: The server failed; what was written so far is in `out`.
    """
    reporter.phase("reading items", None)
    items = []
    async for item in kv.items(prefix):  # one paginated Scan: values and expiry together
        items.append(item)
        reporter.advance(1)
    items.sort(key=lambda item: item.key)
    reporter.phase("exporting", len(items))
    for item in items:
        summary.read += 1
        expires_at = None if item.expires_at is None else math.ceil(item.expires_at)
        out.write(encode(Record(item.key, item.value, expires_at)) + "\n")
        summary.written += 1
    reporter.advance(len(items))


def _ttl_until(expires_at: int | None) -> float | None:
    """The TTL that stores `expires_at` exactly; 0 or less when it is (nearly) past."""
    if expires_at is None:
        return None
    return expires_at - time.time() - _EXPIRY_MARGIN


@dataclass
class _Counts:
    written: int = 0
    skipped: int = 0
    unwritten: int = 0

    def __add__(self, other: _Counts) -> _Counts:
        return _Counts(
            self.written + other.written,
            self.skipped + other.skipped,
            self.unwritten + other.unwritten,
        )


def _same(record: Record, have: StoredItem | None) -> bool:
    """True if the table holds this exact item: same type, value and expiry."""
    if have is None or type(have.value) is not type(record.value) or have.value != record.value:
        return False
    if have.expires_at is None or record.expires_at is None:
        return have.expires_at is None and record.expires_at is None
    # The file holds whole seconds, rounded up; the table the exact expiry.
    return abs(have.expires_at - record.expires_at) <= 1.0


class _Importer:
    """Writes batches of records, counting what happened to each in `summary`."""

    def __init__(
        self,
        kv: AsyncDynamoKV,
        reporter: Reporter,
        summary: Summary,
        *,
        overwrite: bool,
        concurrency: int,
    ) -> None:
        self.kv = kv
        self.reporter = reporter
        self.summary = summary
        self.overwrite = overwrite
        self.limit = asyncio.Semaphore(concurrency)

    def invalid(self, where: str, problem: object) -> None:
        self.summary.invalid += 1
        self.reporter.warn(f"{where}: {problem}")

    async def batch(self, records: list[tuple[int, Record]]) -> None:
        """Import one batch; a later line for the same key wins."""
        latest: dict[str, tuple[int, Record]] = {}
        for number, record in records:
            if record.key in latest:
                self.summary.skipped += 1  # superseded by a later line
            latest[record.key] = (number, record)
        live: list[tuple[int, Record]] = []
        for number, record in latest.values():
            ttl = _ttl_until(record.expires_at)
            if ttl is not None and ttl <= 0:
                self.summary.skipped += 1  # already expired: nothing to write
            else:
                live.append((number, record))
        try:
            counts = await self.apply([record for _, record in live])
        except KVValidationError:
            # Something in the batch cannot be stored, and nothing of the failing call
            # was sent: redo the batch one record at a time to find out what.
            counts = _Counts()
            for number, record in live:
                counts += await self._apply_one(number, record)
        self.summary.written += counts.written
        self.summary.skipped += counts.skipped
        self.summary.unwritten += counts.unwritten

    async def _apply_one(self, number: int, record: Record) -> _Counts:
        try:
            return await self.apply([record])
        except KVValidationError as exc:
            self.invalid(f"line {number}", exc)
            return _Counts()

    async def apply(self, records: list[Record]) -> _Counts:
        """Write the records that the table does not already hold identically."""
        stored: dict[str, StoredItem] = {}
        if records and not self.overwrite:
            stored = await self.kv._stored_many([record.key for record in records])
        counts = _Counts()
        groups: dict[int | None, dict[str, str | bytes]] = {}
        jobs = []
        for record in records:
            if _same(record, stored.get(record.key)):
                counts.skipped += 1
            elif isinstance(record.value, int):
                jobs.append(self._counter(record.key, record.value, record.expires_at))
            else:
                groups.setdefault(record.expires_at, {})[record.key] = record.value
        jobs += [self._set_many(items, expires_at) for expires_at, items in groups.items()]
        results = await asyncio.gather(*jobs, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result
            counts += result
        return counts

    async def _set_many(self, items: dict[str, str | bytes], expires_at: int | None) -> _Counts:
        async with self.limit:
            ttl = _ttl_until(expires_at)
            if ttl is not None and ttl <= 0:
                return _Counts(skipped=len(items))  # expired while waiting its turn
            try:
                await self.kv.set_many(items, ttl=ttl)
            except BatchIncompleteError as exc:
                self.reporter.warn(
                    f"{len(exc.unprocessed)} items not written before the batch deadline "
                    "(run the import again to retry them)"
                )
                return _Counts(len(items) - len(exc.unprocessed), 0, len(exc.unprocessed))
            return _Counts(written=len(items))

    async def _counter(self, key: str, value: int, expires_at: int | None) -> _Counts:
        async with self.limit:
            ttl = _ttl_until(expires_at)
            if ttl is not None and ttl <= 0:
                return _Counts(skipped=1)
            await self.kv.set_counter(key, value, ttl=ttl)  # one atomic write
            return _Counts(written=1)


async def import_items(
    kv: AsyncDynamoKV,
    lines: Iterable[str],
    reporter: Reporter,
    summary: Summary,
    *,
    total: int | None = None,
    batch_size: int = 1000,
    overwrite: bool = False,
    concurrency: int = 16,
) -> None:
    """Write the records in `lines` to `kv`, in batches of `batch_size` lines.

    Bad lines and items that cannot be stored are reported through `reporter`, counted
    as invalid and passed over; the rest is imported.

    Args:
        kv: The store to write to.
        lines: JSON Lines (blank lines are ignored).
        reporter: Progress and problems.
        summary: Counts what happened, also when the import stops half-way.
        total: Number of lines, when known, for the progress bar.
        batch_size: Lines read and compared per batch.
        overwrite: Write every item, without first reading what the table holds.
        concurrency: ``set_many``/``incr`` calls in flight at once.

    Raises:
        KVError: The server failed.
    """
    importer = _Importer(kv, reporter, summary, overwrite=overwrite, concurrency=concurrency)
    reporter.phase("importing", total)
    batch: list[tuple[int, Record]] = []
    consumed = 0
    for number, line in enumerate(lines, 1):
        consumed += 1
        if not line.strip():
            continue
        summary.read += 1
        try:
            batch.append((number, decode(line)))
        except RecordError as exc:
            importer.invalid(f"line {number}", exc)
        if len(batch) >= batch_size:
            await importer.batch(batch)
            reporter.advance(consumed)
            batch, consumed = [], 0
    await importer.batch(batch)
    reporter.advance(consumed)


def count_lines(path: str) -> int:
    """Lines in a file, for the progress bar's total (a fast binary read)."""
    count = 0
    last = b"\n"
    with open(path, "rb") as file:  # noqa: PTH123 (a plain path string from the command line)
        while chunk := file.read(1 << 20):
            count += chunk.count(b"\n")
            last = chunk[-1:]
    return count + (last != b"\n")
