"""The communicator seam: one process, or many joined by MPI (mpi4py over the ``mpich`` wheel).

Data-parallel training needs four collective operations, and nothing else: sum an array over
the ranks (the flat gradient vector, once per step; the epoch's loss and accuracy sums),
broadcast the parameters from rank 0 (so every rank starts from the same weights), and check
that the parameters are still the same bits on every rank (a digest per rank, gathered once
an epoch). ``Single`` does them for one process at no cost; ``MPIComm`` with MPI.

``communicator(None)`` finds out how the program was started: under ``mpiexec`` (MPICH's
PMI_SIZE, Open MPI's OMPI_COMM_WORLD_SIZE, Slurm's PMI) with more than one process it joins
MPI.COMM_WORLD (mpi4py must then be installed: ``pip install "deltaprop[mpi]"``); otherwise
it is one process, whether mpi4py is installed or not.
"""

from __future__ import annotations

import hashlib
import os
import signal
import sys
import threading
import time

import numpy as np

from . import errors
from .errors import ConfigError, DeltapropError, DivergenceError

WORLD_SIZE_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE")
EVERY_RANK = "_deltaprop_every_rank"  # set on an error that every rank of the job raises at the same point
CLEANUPS: list = []  # what this process must undo before it ends the job (MPI_Abort skips Python's exit handlers)
INTERRUPTS_WATCHED = threading.Event()  # set once watch_interrupts has its thread (once a process)


def met_by_every_rank(exc: BaseException) -> BaseException:
    """``exc``, marked as raised by every rank at once (it comes from a collective operation's result): no rank is
    left waiting for this one, so it ends each rank as usual rather than ending the job."""
    setattr(exc, EVERY_RANK, True)
    return exc


def clean_up_before_abort(cleanup) -> None:
    """Have ``cleanup()`` run before this rank ends the job, and as soon as SIGINT reaches it (watch_interrupts)."""
    if cleanup not in CLEANUPS:
        CLEANUPS.append(cleanup)


def run_cleanups() -> None:
    for cleanup in list(CLEANUPS):
        try:
            cleanup()
        except Exception as exc:  # noqa: BLE001 (a failed cleanup must not stop the others, nor the abort)
            sys.stderr.write(f"deltaprop: cleanup failed: {exc}\n")


def watch_interrupts() -> None:
    """Run the cleanups from a thread the moment SIGINT arrives (mpiexec passes Ctrl-C on to every rank). The
    main thread may be waiting inside an MPI call, where Python's own handler cannot run until it returns, and
    the first rank to handle its KeyboardInterrupt ends the job (MPI_Abort), killing the waiting ranks (SIGKILL)
    before their exit handlers would have removed what they leave on disk. Main thread only; once a process."""
    if threading.current_thread() is not threading.main_thread() or INTERRUPTS_WATCHED.is_set():
        return
    read, write = os.pipe()
    os.set_blocking(write, False)
    if signal.set_wakeup_fd(write, warn_on_full_buffer=False) != -1:  # someone else's: left to them
        signal.set_wakeup_fd(-1)
        return
    INTERRUPTS_WATCHED.set()

    def watch():
        while got := os.read(read, 64):
            if signal.SIGINT in got:
                run_cleanups()

    threading.Thread(target=watch, name="deltaprop-interrupts", daemon=True).start()


INTERRUPT_GRACE = 2.0  # seconds an interrupted rank waits for the others' cleanups before ending the job


class Single:
    """One process: every collective operation is the identity."""

    rank, size = 0, 1

    def sum(self, array: np.ndarray) -> np.ndarray:
        return array

    def broadcast(self, array: np.ndarray) -> np.ndarray:
        return array

    def broadcast_value(self, value):
        return value

    def check_identical(self, array: np.ndarray, what: str) -> None:
        return None

    def agree(self, values: dict, what: str) -> None:
        return None

    def from_rank0(self, compute):
        return compute()

    def end_job(self, exc: BaseException) -> None:
        return None


class MPIComm:
    """An mpi4py communicator: Allreduce (sum, in place), Bcast from rank 0, a gathered digest."""

    def __init__(self, comm):
        from mpi4py import MPI  # the [mpi] extra; imported only for a job of several processes

        self.MPI, self.comm = MPI, comm
        self.rank, self.size = comm.Get_rank(), comm.Get_size()

    def sum(self, array: np.ndarray) -> np.ndarray:
        """array = the sum of every rank's array, in place (one Allreduce; C-contiguous float64 or float32)."""
        self.comm.Allreduce(self.MPI.IN_PLACE, array, op=self.MPI.SUM)
        return array

    def broadcast(self, array: np.ndarray) -> np.ndarray:
        """array = rank 0's array, in place."""
        self.comm.Bcast(array, root=0)
        return array

    def broadcast_value(self, value):
        """Rank 0's ``value`` (a Python object, pickled by mpi4py) on every rank."""
        return self.comm.bcast(value, root=0)

    def from_rank0(self, compute):
        """``compute()`` run on rank 0, its value on every rank. An error there is raised on every rank (a
        deltaprop error as itself, anything else as a RuntimeError naming it), so no rank waits for a value
        that will not come."""
        value, error = None, None
        if self.rank == 0:
            try:
                value = compute()
            except Exception as exc:  # every rank must leave the broadcast: the error travels in it
                error = exc
        sent = self.comm.bcast(("error", type(error).__name__, str(error)) if error is not None else ("ok", value),
                               root=0)
        if error is not None:
            raise met_by_every_rank(error)
        if sent[0] == "error":
            kind = getattr(errors, sent[1], None)
            raise met_by_every_rank(kind(sent[2]) if isinstance(kind, type) and issubclass(kind, DeltapropError)
                                    else RuntimeError(f"rank 0 stopped: {sent[1]}: {sent[2]}"))
        return sent[1]

    def agree(self, values: dict, what: str) -> None:
        """Raise ConfigError on every rank, naming each key whose value differs and which ranks hold which, when
        the ranks' ``values`` (small plain values) are not all the same: the ranks must run the same job."""
        gathered = self.comm.allgather(values)
        keys = list(dict.fromkeys(k for g in gathered for k in g))
        differ = [k for k in keys if any(g.get(k, "(none)") != gathered[0].get(k, "(none)") for g in gathered)]
        if not differ:
            return
        described = []
        for key in differ[:5]:
            holders: dict = {}
            for rank, g in enumerate(gathered):
                holders.setdefault(repr(g.get(key, "(none)")), []).append(rank)
            described.append(f"{key}: " + ", ".join(f"{v} on rank{'s' * (len(r) > 1)} {', '.join(map(str, r))}"
                                                    for v, r in holders.items()))
        raise met_by_every_rank(ConfigError(f"the ranks of this job differ in their {what} ({'; '.join(described)})"
                                            ": every rank must be given the same"))

    def end_job(self, exc: BaseException) -> None:
        """An error met by this rank alone (a shard only it reads, a checkpoint only rank 0 writes) would leave
        the other ranks waiting in the next collective operation for ever: the error is printed and the whole
        job ended (MPI_Abort), as ``python -m mpi4py`` does, after this rank's cleanups. DivergenceError (the loss
        is summed) and errors marked met_by_every_rank are met by every rank at once and are raised as usual."""
        if isinstance(exc, DivergenceError) or getattr(exc, EVERY_RANK, False) or \
                isinstance(exc, SystemExit) and exc.code in (0, None):
            return
        met_by_every_rank(exc)  # said once (fit and the command line both end the job on an error)
        sys.stderr.write(f"deltaprop: rank {self.rank} of {self.size} stopped: {type(exc).__name__}: {exc}; "
                         "ending the job (the other ranks would wait for it)\n")
        sys.stderr.flush()
        run_cleanups()
        if isinstance(exc, KeyboardInterrupt):  # Ctrl-C reached every rank at once: their cleanup threads
            time.sleep(INTERRUPT_GRACE)  # (watch_interrupts) finish before the abort kills them (seen under load)
        self.comm.Abort(130 if isinstance(exc, KeyboardInterrupt) else
                        2 if isinstance(exc, (DeltapropError, OSError)) else 1)  # the codes of deltaprop's CLI

    def check_identical(self, array: np.ndarray, what: str) -> None:
        """Raise, on every rank, if ``array`` differs in any bit between ranks (16-byte digests gathered)."""
        digest = hashlib.blake2b(np.ascontiguousarray(array).data.cast("B"), digest_size=16).digest()
        digests = self.comm.allgather(digest)
        if len(set(digests)) > 1:
            differ = [r for r, d in enumerate(digests) if d != digests[0]]
            raise RuntimeError(f"{what} differ between ranks (ranks {differ} differ from rank 0): the ranks no "
                               "longer train the same model; stopping the job")


def fingerprint(*arrays) -> str:
    """A digest of arrays' shapes, types and contents (text labels included; a sparse matrix by its parts), for
    ranks to compare their data without sending it."""
    digest = hashlib.blake2b(digest_size=16)
    for array in arrays:
        parts = [array.data, array.indices, array.indptr] if hasattr(array, "indptr") else [np.asarray(array)]
        for part in parts:
            digest.update(f"{part.dtype.str}{part.shape};".encode())
            if part.dtype.kind == "O":
                digest.update("\0".join(map(repr, part.ravel().tolist())).encode())
            else:
                digest.update(np.ascontiguousarray(part).reshape(-1).view(np.uint8).data)
    return digest.hexdigest()


def launched_ranks() -> int:
    """How many processes the launcher started (1 when not under mpiexec / srun)."""
    for name in WORLD_SIZE_VARIABLES:
        value = os.environ.get(name, "")
        if value.isdigit():
            return int(value)
    return 1


def communicator(comm=None) -> Single | MPIComm:
    """``comm`` (an mpi4py communicator) wrapped, or the launch's own: MPI.COMM_WORLD under a launcher of
    several processes, else one process."""
    if isinstance(comm, (Single, MPIComm)):
        return comm
    if comm is not None:
        return MPIComm(comm) if comm.Get_size() > 1 else Single()
    if launched_ranks() <= 1:
        return Single()
    try:
        from mpi4py import MPI
    except ImportError:
        raise ConfigError(f"started as {launched_ranks()} processes, but mpi4py is not installed: "
                          'pip install "deltaprop[mpi]"') from None
    return MPIComm(MPI.COMM_WORLD)
