"""Verifying an audit chain from its rows: the hash chain, the Merkle tree over it and its signed checkpoints.

A full run (`verify_chain(model)`) reads one snapshot of the database and checks, for each record in seq order:

- that seq follows on: a record deleted, inserted or moved shows as a gap, or as a hash that no longer holds
  (seq is hashed);
- that prev_hash is the previous record's hash and record_hash the hash of prev_hash and the record's
  canonical JSON (tlog.records);
- that its leaf hash is the tree's stored leaf, and that every subtree the leaf completes is the stored node:
  an edited or deleted inner node is reported at the record that completes it, so every node a proof can be
  built from is checked, not only those of the current root;
- at each stored checkpoint's size: that the root recomputed from the records is the checkpoint's, and that
  its signed note verifies with the configured keys (`checkpoints.verifiers()`) and names that size and root;

and at the end that the head row holds (seq, head_hash, tree_size), that the stored tree's root at tree_size
is the recomputed one, and that no record, leaf or checkpoint lies beyond the head.

One failure is reported, `first_broken`: `{"seq", "id", "reason"}` of a record (id None for a tree node or
the head), or for a checkpoint `{"seq": size, "id": None, "reason": "checkpoint of size N: …"}`. The hash
chain comes first — its first broken record, else what the head row shows — and then the tree and the
checkpoints, their first failure in seq order, else what the head's tree size shows. (An edited record whose
own hash was recomputed breaks both its leaf and the next record's link: the link is the finding.)

The head is read first, in the same snapshot as everything else (REPEATABLE READ on PostgreSQL, a read
transaction on SQLite, whose WAL mode keeps it from blocking writers): records appended while a verification
runs are not seen, so they are neither reported nor counted; the head row reveals records deleted from the end.

Speed (docs/benchmarks.md): plain rows streamed in seq order through server-side cursors, only the columns the
hashes need; times formatted by PostgreSQL in `iso_utc`'s spelling (a Python datetime per row and its
formatting cost more than the rest of reading it); each record's canonical JSON is encoded once and both its
hashes are taken over those bytes; the tree's frontier is folded as the leaves come (one node hash per leaf on
average) while the stored nodes are read alongside, one ordered stream per level (a merge join). A long chain
on PostgreSQL is split into seq ranges verified side by side by worker processes in the same exported
snapshot: each range starts from the stored record before it and the stored frontier at its start — both
checked by the ranges before it — and the ranges are stitched in order (`_stitch`), so the report is the one
a single pass gives. (Workers are started with multiprocessing (`_pool`): a program that verifies from its main
module guards it with `if __name__ == "__main__"`, as multiprocessing asks.)
"""

from __future__ import annotations

import gc
import itertools
import multiprocessing
import os
import re
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from functools import cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection
from sqlalchemy.pool import NullPool

from app.extensions import db
from app.ledger import checkpoints, tree
from app.ledger.chain import GENESIS, payload_of
from app.ledger.models import ChainedRecord, ChainHead, TreeNode
from app.ledger.models import Checkpoint as CheckpointRow
from app.modelbase import UTCDateTime
from tlog import merkle, note, records
from tlog.checkpoint import Checkpoint, CheckpointError

__all__ = ["VerifyResult", "verify_chain"]

_HEADS = ChainHead.__table__
_NODES = TreeNode.__table__
_CHECKPOINTS = CheckpointRow.__table__
# `iso_utc`'s spelling in PostgreSQL's to_char, of the time in UTC (tests/ledger/test_verify.py holds them equal).
_ISO_UTC = 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'
# Below this many records a chain is verified in this process: starting workers would cost more than they save.
PARALLEL_FROM = 100_000
_SNAPSHOT_ID = re.compile(r"[0-9A-F]+-[0-9A-F]+(-[0-9]+)?")


@dataclass
class VerifyResult:
    """One chain's verification: `checked` records whose links and hashes were recomputed, the first failure
    (None when all holds) and the hash of the last record verified."""

    ok: bool
    checked: int
    first_broken: dict | None
    head_hash: str
    started_after: int = 0  # an incremental run's checkpoint size: the records up to it were not re-hashed
    checkpoints: int = 0  # stored checkpoints whose root and signature were checked


def verify_chain(model: type, batch_size: int = 5000, *, since_checkpoint: bool = False,
                 workers: int | None = None) -> VerifyResult:
    """Recompute `model`'s chain, tree and checkpoints from the rows; report the first failure.

    `batch_size` rows are fetched at a time. `workers` processes share a long chain (default: one per CPU from
    PARALLEL_FROM records on PostgreSQL, else this process alone).

    `since_checkpoint=True` (incremental) starts from the newest stored checkpoint whose signature verifies and
    whose root is the stored tree's root at its size, and re-hashes only the records after it (from the stored
    record at that size and the stored frontier of the tree there); without such a checkpoint it is a full
    run. What it does not catch: edits to the records up to that checkpoint (their rows are not read), and
    edits to the tree's nodes under its size other than those its root is composed of. A full run catches both.
    """
    keys = checkpoints.verifier_keys()
    with db.engine.connect() as connection, _snapshot(connection):
        return _verify(connection, model, batch_size, since_checkpoint, workers, tuple(keys))


# ------------------------------------------------------------------------------------------ the coordinator


@dataclass(frozen=True)
class _Job:
    """One seq range of a verification, (start, end]: what a process needs to verify it on its own."""

    model: type
    start: int
    end: int
    tree_size: int  # the head's: leaves and checkpoints are checked up to it
    verifier_keys: tuple[str, ...]
    batch_size: int
    # (expected seq, expected prev_hash) at the start, and the tree's frontier there (frontier_ids(start)
    # order); None: the stored record `start` and the stored nodes, which the ranges before this one check.
    link: tuple[int, str] | None = None
    frontier: tuple[bytes, ...] | None = None


@dataclass
class _Outcome:
    """What one range found, for `_stitch`."""

    assumed: tuple[int, str | None]  # the link it started from
    first: tuple[int, str] | None  # (seq, id) of its first record
    link: tuple[int, str | None]  # the link after its last verified record
    checked: int
    broken: dict | None  # the hash chain's first break
    tree_broken: dict | None  # the first failure of a leaf, a node or a checkpoint before it
    root: bytes | None  # the recomputed root at the head's tree size, when the range holds that size
    checkpoints: int


@dataclass
class _Findings:
    """The ranges' outcomes stitched together: what one pass over the whole chain finds."""

    link: tuple[int, str | None]
    checked: int = 0
    broken: dict | None = None
    tree_broken: dict | None = None
    root: bytes | None = None
    checkpoints: int = 0


def _verify(connection: Connection, model: type, batch_size: int, since_checkpoint: bool, workers: int | None,
            keys: tuple[str, ...]) -> VerifyResult:
    chain = model.CHAIN
    head = connection.execute(sa.select(_HEADS.c.seq, _HEADS.c.head_hash, _HEADS.c.tree_size)
                              .where(_HEADS.c.chain == chain)).first()
    table = model.__table__
    if head is None:
        # No head: every record is checked (there is no end to stop at) and reported as headless below.
        end = connection.execute(sa.select(sa.func.max(table.c.seq))).scalar() or 0
        tree_size = 0
    else:
        end, tree_size = head.seq, min(head.tree_size, head.seq)
    base = _base(connection, model, tree_size, keys) if since_checkpoint and head is not None else None
    start, link, frontier = base or (0, (1, GENESIS), ())
    count = workers if workers is not None else _default_workers(connection, end - start)
    jobs = _split(model, start, end, tree_size, keys, batch_size, link, frontier, max(1, count))
    found = _stitch(_run(connection, jobs), link)
    if found.root is None and tree_size == start:
        found.root = _fold(frontier)
    # The hash chain's break first (the head is part of the chain), then the tree's and the checkpoints'.
    broken = (found.broken or _head_problem(connection, model, head, found.link) or found.tree_broken
              or _tree_problem(connection, model, head, tree_size, found.root))
    return VerifyResult(broken is None, found.checked, broken, found.link[1] or GENESIS, start, found.checkpoints)


def _default_workers(connection: Connection, count: int) -> int:
    """One process per CPU for a long chain on PostgreSQL, each with a range worth starting a process for (and
    each a database connection: a large host does not take eight times as many)."""
    if connection.dialect.name != "postgresql" or count < PARALLEL_FROM:
        return 1
    return max(1, min(os.cpu_count() or 1, 8, count // (PARALLEL_FROM // 2)))


def _split(model: type, start: int, end: int, tree_size: int, keys: tuple[str, ...], batch_size: int,
           link: tuple[int, str], frontier: Sequence[bytes], count: int) -> list[_Job]:
    """(start, end] in `count` ranges of about the same length; the first starts from what is known."""
    bounds = [start + (end - start) * part // count for part in range(count + 1)]
    bounds = sorted(set(bounds)) if end > start else [start, end]
    jobs = []
    for position, (low, high) in enumerate(zip(bounds, bounds[1:], strict=False)):
        first = position == 0
        jobs.append(_Job(model, low, high, tree_size, keys, batch_size, link if first else None,
                         tuple(frontier) if first else None))
    return jobs or [_Job(model, start, end, tree_size, keys, batch_size, link, tuple(frontier))]


def _run(connection: Connection, jobs: list[_Job]) -> list[_Outcome]:
    """The first range here (on this snapshot), the others in worker processes (on an export of it)."""
    if len(jobs) == 1:
        with _frozen_gc():
            return [_scan(connection, jobs[0])]
    snapshot = _export_snapshot(connection)
    url = connection.engine.url.render_as_string(hide_password=False)
    with _pool(len(jobs) - 1) as pool:
        futures = [pool.submit(_run_job, url, snapshot, job) for job in jobs[1:]]
        with _frozen_gc():
            outcomes = [_scan(connection, jobs[0])]
        outcomes += [future.result() for future in futures]
    return outcomes


@contextmanager
def _frozen_gc() -> Iterator[None]:
    """The objects that exist now left out of the garbage collector's full passes while a range is scanned.

    A scan allocates a few dozen objects per record, so the collector runs often, and each full pass walked
    every object of the process (the app, its models, the libraries): about a third of the time of a scan.
    Frozen objects are only not collected meanwhile; nothing else changes, for this thread or any other.
    """
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _pool(size: int) -> Executor:
    """Worker processes: forked from this one when it runs no other thread (a CLI command: they start at once
    and use nothing it holds), else from multiprocessing's forkserver — a clean process that imported this
    module once — since forking a process whose other threads may hold locks (a web worker) is unsafe."""
    if threading.active_count() == 1 and "fork" in multiprocessing.get_all_start_methods():
        return ProcessPoolExecutor(size, mp_context=multiprocessing.get_context("fork"))
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__])
    return ProcessPoolExecutor(size, mp_context=context)


def _run_job(url: str, snapshot: str | None, job: _Job) -> _Outcome:
    """A worker process's range, on a connection of its own in the coordinator's snapshot."""
    gc.disable()  # a process of its own, ending with the range: see _frozen_gc
    engine = sa.create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection, _snapshot(connection, snapshot):
            return _scan(connection, job)
    finally:
        engine.dispose()


@contextmanager
def _snapshot(connection: Connection, imported: str | None = None) -> Iterator[None]:
    """Every read of a verification in one snapshot of the database (a worker's in the coordinator's)."""
    if connection.dialect.name == "postgresql":
        connection.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
        with connection.begin():
            if imported is not None:
                # The statement takes no parameters: the id is written into it, so only an id's shape goes.
                if not _SNAPSHOT_ID.fullmatch(imported):
                    raise ValueError(f"not a snapshot id: {imported!r}")
                connection.exec_driver_sql(f"SET TRANSACTION SNAPSHOT '{imported}'")
            yield
        return
    with connection.begin():
        if connection.dialect.name == "sqlite":
            # pysqlite starts no transaction for reads: without one, every statement would see its own moment.
            connection.exec_driver_sql("BEGIN")
        yield


def _export_snapshot(connection: Connection) -> str | None:
    if connection.dialect.name != "postgresql":
        # SQLite cannot share one: workers read the records up to the head, which appends never change.
        return None
    return connection.exec_driver_sql("SELECT pg_export_snapshot()").scalar()


def _stitch(outcomes: list[_Outcome], link: tuple[int, str]) -> _Findings:
    """The ranges' findings in seq order, as one pass over the chain would report them.

    A range assumed the link of the stored record before it. When the ranges before it ended elsewhere
    (records missing at the end of a range, or the record it started from), the chain breaks at the range's
    first record, as a single pass would have found it: after the gap. A range's tree findings count only up
    to the chain's break; the first of them is the one a single pass would have kept.
    """
    found = _Findings(link)
    for outcome in outcomes:
        # A range without records leaves the link as it was: the gap, if any, shows at the next record or at
        # the chain's end.
        if outcome.first is not None:
            if outcome.assumed != found.link:
                seq, record_id = outcome.first
                found.broken = {"seq": seq, "id": record_id,
                                "reason": f"missing record(s): expected seq {found.link[0]}, found {seq}"}
                return found
            found.checked += outcome.checked
            found.link = outcome.link
        if found.tree_broken is None:  # a single pass checks no checkpoint after the tree's first failure
            found.checkpoints += outcome.checkpoints
            found.tree_broken = outcome.tree_broken
        found.root = outcome.root if outcome.root is not None else found.root
        if outcome.broken is not None:
            found.broken = outcome.broken
            return found
    return found


def _head_problem(connection: Connection, model: type, head, link: tuple[int, str | None]) -> dict | None:
    """What the head row, and any record beyond it, shows once every record up to it holds."""
    table = model.__table__
    last = link[0] - 1
    if head is None:
        if last:
            # Records without a head row: the head was deleted (or never written by `append`).
            return {"seq": last, "id": None, "reason": "the chain's head row is missing"}
        return None
    if last != head.seq:
        # Rows deleted from the end leave an intact but shorter chain: the head row remembers the length.
        return {"seq": last + 1, "id": None, "reason": f"chain ends at seq {last}, head says {head.seq}"}
    if link[1] != head.head_hash:
        return {"seq": head.seq, "id": None, "reason": "the head's hash is not the last record's hash"}
    beyond = connection.execute(sa.select(table.c.seq, table.c.id).where(table.c.seq > head.seq)
                                .order_by(table.c.seq).limit(1)).first()
    if beyond is not None:
        # In this snapshot a record is always committed with the head that counts it: this one never was.
        return {"seq": beyond.seq, "id": beyond.id,
                "reason": f"a record beyond the chain's head (head says seq {head.seq})"}
    return None


def _tree_problem(connection: Connection, model: type, head, tree_size: int, root: bytes | None) -> dict | None:
    """What the head's tree size, the stored tree and the checkpoints beyond it show once all else holds."""
    chain = model.CHAIN
    if head is None:
        return None
    if head.tree_size > head.seq:
        return {"seq": head.tree_size, "id": None,
                "reason": f"the head's tree size {head.tree_size} is beyond its {head.seq} records"}
    leaf = connection.execute(sa.select(sa.func.min(_NODES.c.idx)).where(
        _NODES.c.chain == chain, _NODES.c.level == 0, _NODES.c.idx >= tree_size)).scalar()
    if leaf is not None:
        return {"seq": leaf + 1, "id": None,
                "reason": f"the tree holds a leaf beyond the head's tree size {tree_size}"}
    try:
        stored = tree.root(connection, chain, tree_size)
    except tree.TreeIncomplete as exc:
        return {"seq": tree_size, "id": None, "reason": f"the tree's root at its size cannot be composed: {exc}"}
    if root is not None and stored != root:
        return {"seq": tree_size, "id": None,
                "reason": f"the stored tree's root at size {tree_size} is not the one recomputed from the records"}
    size = connection.execute(sa.select(sa.func.min(_CHECKPOINTS.c.tree_size)).where(
        _CHECKPOINTS.c.chain == chain, _CHECKPOINTS.c.tree_size > tree_size)).scalar()
    if size is not None:
        return {"seq": size, "id": None,
                "reason": f"checkpoint of size {size}: beyond the tree's size {tree_size} (the log was rolled back)"}
    return None


def _base(connection: Connection, model: type, tree_size: int,
          keys: tuple[str, ...]) -> tuple[int, tuple[int, str], tuple[bytes, ...]] | None:
    """Where an incremental run starts: (size, link, frontier) at the newest checkpoint that holds, or None."""
    chain, table = model.CHAIN, model.__table__
    verifiers = [note.Verifier.from_key(key) for key in keys]
    rows = connection.execute(
        sa.select(_CHECKPOINTS.c.tree_size, _CHECKPOINTS.c.root_hash, _CHECKPOINTS.c.note)
        .where(_CHECKPOINTS.c.chain == chain, _CHECKPOINTS.c.tree_size > 0, _CHECKPOINTS.c.tree_size <= tree_size)
        .order_by(_CHECKPOINTS.c.tree_size.desc())
    ).all()
    for row in rows:
        root = _hex(row.root_hash)
        if root is None or _checkpoint_problem(chain, row, root, verifiers) is not None:
            continue  # not a starting point; a run from an older one reports it at its size
        ids = merkle.frontier_ids(row.tree_size)
        nodes = tree.node_hashes(connection, chain, ids)
        if len(nodes) != len(ids) or _fold([nodes[node] for node in ids]) != root:
            continue
        prev = connection.execute(sa.select(table.c.record_hash).where(table.c.seq == row.tree_size)).scalar()
        if prev is None:
            continue
        return row.tree_size, (row.tree_size + 1, prev), tuple(nodes[node] for node in ids)
    return None


# --------------------------------------------------------------------------------------------- one range


@dataclass(frozen=True)
class _Layout:
    """Which columns a chain's scan selects, where each sits in the row, and how the payload is built."""

    keys: tuple[str, ...]  # the keys of the first len(keys) columns: the payload's (`fast`) or the row's
    columns: tuple[Any, ...]
    seq: int
    id: int
    prev_hash: int
    record_hash: int
    leaf_salt: int
    fast: bool  # the model hashes ChainedRecord.chain_payload; else its own, from the whole row


@cache
def _layout(model: type, dialect: str) -> _Layout:
    table = model.__table__
    fast = model.chain_payload is ChainedRecord.chain_payload
    if fast:
        # In sorted order, `chain` too (as a constant): the encoder sorts a sorted dict fastest.
        keys = tuple(sorted({*model.HASHED_FIELDS, "seq", "recorded_at", "chain"}))
        columns = [sa.literal(model.CHAIN, sa.String()).label("chain") if key == "chain"
                   else _payload_column(table.c[key], dialect) for key in keys]
    else:
        keys = tuple(column.key for column in table.columns)
        columns = list(table.columns)
    names = list(keys)
    for key in ("prev_hash", "record_hash", "leaf_salt", "id"):
        if key not in names:
            names.append(key)
            columns.append(table.c[key])
    return _Layout(keys, tuple(columns), names.index("seq"), names.index("id"), names.index("prev_hash"),
                   names.index("record_hash"), names.index("leaf_salt"), fast)


def _payload_column(column: sa.Column, dialect: str):
    if dialect == "postgresql" and isinstance(column.type, UTCDateTime):
        return sa.func.to_char(sa.func.timezone("UTC", column), _ISO_UTC).label(column.key)
    return column


def _stream(connection: Connection, query, batch: int, results: ExitStack) -> Iterator:
    """The rows of an ordered query, fetched `batch` at a time through a server-side cursor (closed with
    `results`: a scan stops reading most streams before their end).

    Chunk by chunk (`partitions`), flattened in C: fetching row by row through the result costs about a
    microsecond a row, a tenth of verifying it.
    """
    result = connection.execute(query.execution_options(stream_results=True, yield_per=batch))
    results.callback(result.close)
    return itertools.chain.from_iterable(result.partitions())


class _Nodes:
    """The stored nodes of one level of the tree in a range of indexes, in order (one side of a merge join)."""

    __slots__ = ("_connection", "_query", "_batch", "_results", "_rows")

    def __init__(self, connection: Connection, chain: str, level: int, first: int, stop: int, batch: int,
                 results: ExitStack) -> None:
        self._connection, self._batch, self._results, self._rows = connection, batch, results, None
        self._query = (sa.select(_NODES.c.idx, _NODES.c.hash)
                       .where(_NODES.c.chain == chain, _NODES.c.level == level, _NODES.c.idx >= first,
                              _NODES.c.idx < stop)
                       .order_by(_NODES.c.idx))

    def rows(self) -> Iterator[tuple[int, bytes]]:
        if self._rows is None:  # opened when first needed: the top levels have a node or two
            self._rows = _stream(self._connection, self._query, self._batch, self._results)
        return self._rows

    def next(self) -> tuple[int, bytes] | None:
        return next(self.rows(), None)


def _scan(connection: Connection, job: _Job) -> _Outcome:
    """Verify the records of (job.start, job.end], their leaves and nodes, and the checkpoints of their sizes.

    A break of the hash chain ends the scan. A failure of the tree or a checkpoint is kept (the first) and the
    chain is checked on without the tree: the chain's break, if any, is what is reported first.
    """
    with ExitStack() as results:
        return _scan_range(connection, job, results)


def _scan_range(connection: Connection, job: _Job, results: ExitStack) -> _Outcome:
    model, start = job.model, job.start
    chain, table = model.CHAIN, model.__table__
    layout = _layout(model, connection.dialect.name)
    if job.link is not None:
        expected_seq, expected_prev = job.link
    else:
        expected_seq = start + 1
        # None when that record is missing: the ranges before this one end elsewhere, and `_stitch` says so.
        expected_prev = connection.execute(sa.select(table.c.record_hash).where(table.c.seq == start)).scalar()
    assumed = (expected_seq, expected_prev)
    checked = verified = 0
    first = root = tree_broken = None
    verifiers = [note.Verifier.from_key(key) for key in job.verifier_keys]

    def outcome(broken: dict | None = None) -> _Outcome:
        return _Outcome(assumed, first, (expected_seq, expected_prev), checked, broken, tree_broken, root, verified)

    # The tree: leaves [start, leaves) are this range's; its frontier at `start` is where the fold begins.
    leaves = min(job.end, job.tree_size)
    stack: list[bytes] = []
    levels: list[_Nodes] = []
    if start < leaves:
        if job.frontier is not None:
            stack = list(job.frontier)
        else:
            ids = merkle.frontier_ids(start)
            stored = tree.node_hashes(connection, chain, ids)
            missing = [node for node in ids if node not in stored]
            if missing:  # a range before this one reports the record whose node this is
                tree_broken = {"seq": start + 1, "id": None,
                               "reason": f"tree node (level {missing[0][0]}, index {missing[0][1]}) is missing"}
                leaves = 0
            stack = [stored[node] for node in ids if node in stored]
        levels = [_Nodes(connection, chain, level, start >> level, leaves >> level, job.batch_size, results)
                  for level in range(leaves.bit_length() + 1)]
    if start == 0:  # a checkpoint of the empty tree (cut before the first record)
        problem = _checkpoint_at(connection, chain, 0, merkle.EMPTY_ROOT, verifiers)
        if problem:
            tree_broken, leaves = {"seq": 0, "id": None, "reason": problem}, 0
    marks = _stream(connection, sa.select(_CHECKPOINTS.c.tree_size, _CHECKPOINTS.c.root_hash, _CHECKPOINTS.c.note)
                    .where(_CHECKPOINTS.c.chain == chain, _CHECKPOINTS.c.tree_size > start,
                           _CHECKPOINTS.c.tree_size <= leaves)
                    .order_by(_CHECKPOINTS.c.tree_size), job.batch_size, results)
    mark = next(marks, None)
    rows = _stream(connection, sa.select(*layout.columns).where(table.c.seq > start, table.c.seq <= job.end)
                   .order_by(table.c.seq), job.batch_size, results)

    # The loop runs once per record: locals for everything it calls.
    keys, fast, seq_at, id_at = layout.keys, layout.fast, layout.seq, layout.id
    prev_at, hash_at, salt_at = layout.prev_hash, layout.record_hash, layout.leaf_salt
    encode, record_hash_of = records.canonical_encoder(), records.record_hash_of
    leaf_hash_of = records.record_leaf_hash_of
    hash_children, fromhex, tree_size = merkle.hash_children, bytes.fromhex, job.tree_size
    leaf_rows = levels[0].rows() if levels else iter(())
    for row in rows:
        seq = row[seq_at]
        if first is None:
            first = (seq, row[id_at])
        if seq != expected_seq:
            return outcome(_broken(row, layout, f"missing record(s): expected seq {expected_seq}, found {seq}"))
        prev = row[prev_at]
        if prev != expected_prev:
            return outcome(_broken(row, layout, "prev_hash does not match the previous record's hash"))
        # The first len(keys) columns are the payload's (zip stops there).
        if fast:
            payload = dict(zip(keys, row, strict=False))
        else:
            payload = payload_of(model, dict(zip(keys, row, strict=False)))
        body = encode(payload).encode("utf-8")
        digest = record_hash_of(prev, body)
        if digest != row[hash_at]:
            return outcome(_broken(row, layout, "record_hash does not match the record's contents"))
        checked += 1
        expected_seq, expected_prev = seq + 1, digest
        if seq > leaves:
            continue
        problem = None
        index = seq - 1
        stored = next(leaf_rows, None)
        try:
            leaf = leaf_hash_of(fromhex(row[salt_at]), body)
        except (TypeError, ValueError):
            problem = _broken(row, layout, "leaf_salt is not a hex salt")
        else:
            if stored is None or stored[0] != index:
                problem = _broken(row, layout, "the tree has no leaf for this record")
            elif stored[1] != leaf:
                problem = _broken(row, layout, "the tree's leaf does not match the record")
        if problem is None:
            # Fold the leaf into the frontier: each complete subtree it finishes is checked against its node.
            node, level = leaf, 0
            while index & 1:
                node = hash_children(stack.pop(), node)
                index >>= 1
                level += 1
                stored = levels[level].next()
                if stored is None or stored[0] != index:
                    problem = {"seq": seq, "id": None, "reason": f"tree node (level {level}, index {index}) is missing"}
                    break
                if stored[1] != node:
                    problem = {"seq": seq, "id": None, "reason": f"tree node (level {level}, index {index}) "
                                                                 "does not match the records under it"}
                    break
            else:
                stack.append(node)
                if seq == tree_size:
                    root = _fold(stack)
                if mark is not None and mark[0] == seq:  # (marks stop at `leaves`: the frontier is this size's)
                    verified += 1
                    reason = _checkpoint_problem(chain, mark, _hex(mark[1]), verifiers, _fold(stack))
                    if reason:
                        problem = {"seq": seq, "id": None, "reason": f"checkpoint of size {seq}: {reason}"}
                    mark = next(marks, None)
        if problem is not None:
            tree_broken, leaves = problem, 0  # the chain goes on without the tree
    return outcome()


def _broken(row, layout: _Layout, reason: str) -> dict:
    return {"seq": row[layout.seq], "id": row[layout.id], "reason": reason}


def _fold(frontier: Sequence[bytes]) -> bytes:
    """The root of a tree from its frontier (largest subtree first): tlog.merkle.root_from_frontier's fold."""
    if not frontier:
        return merkle.EMPTY_ROOT
    digest = frontier[-1]
    for node in reversed(frontier[:-1]):
        digest = merkle.hash_children(node, digest)
    return digest


def _hex(text: str) -> bytes | None:
    try:
        return bytes.fromhex(text)
    except (TypeError, ValueError):
        return None


def _checkpoint_at(connection: Connection, chain: str, size: int, root: bytes,
                   verifiers: list[note.Verifier]) -> str | None:
    row = connection.execute(sa.select(_CHECKPOINTS.c.tree_size, _CHECKPOINTS.c.root_hash, _CHECKPOINTS.c.note)
                             .where(_CHECKPOINTS.c.chain == chain, _CHECKPOINTS.c.tree_size == size)).first()
    if row is None:
        return None
    problem = _checkpoint_problem(chain, row, _hex(row.root_hash), verifiers, root)
    return f"checkpoint of size {size}: {problem}" if problem else None


def _checkpoint_problem(chain: str, row, stored: bytes | None, verifiers: list[note.Verifier],
                        root: bytes | None = None) -> str | None:
    """Why a stored checkpoint (tree_size, root_hash, note) does not hold, or None: its root is `root` (the
    recomputed one, when given), its note verifies and names that size and root of this chain's log."""
    size, _, signed = row
    if stored is None:
        return "its root_hash is not a hex hash"
    if root is not None and stored != root:
        return "its root differs from the root recomputed from the records"
    try:
        opened = Checkpoint.parse(note.open(signed, verifiers).text)
    except (note.NoteError, CheckpointError) as exc:
        return f"its signature does not verify ({exc})"
    if (opened.size, opened.root_hash) != (size, stored):
        return f"its signed note is of another tree (size {opened.size})"
    if not opened.origin.endswith(f"/{chain}"):
        return f"its signed note is of another log ({opened.origin})"
    return None
