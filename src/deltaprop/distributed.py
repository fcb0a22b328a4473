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
import sys

import numpy as np

from . import errors
from .errors import ConfigError, DivergenceError

WORLD_SIZE_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE")


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
            raise error
        if sent[0] == "error":
            kind = getattr(errors, sent[1], None)
            raise (kind(sent[2]) if isinstance(kind, type) and issubclass(kind, errors.DeltapropError) else
                   RuntimeError(f"rank 0 stopped: {sent[1]}: {sent[2]}"))
        return sent[1]

    def end_job(self, exc: BaseException) -> None:
        """An error met by this rank alone (a shard only it reads, a checkpoint only rank 0 writes) would leave
        the other ranks waiting in the next collective operation for ever: the error is printed and the whole
        job ended (MPI_Abort), as ``python -m mpi4py`` does. DivergenceError is met by every rank at once (the
        loss is summed) and is raised as usual."""
        if isinstance(exc, DivergenceError):
            return
        sys.stderr.write(f"deltaprop: rank {self.rank} of {self.size} stopped: {type(exc).__name__}: {exc}; "
                         "ending the job (the other ranks would wait for it)\n")
        sys.stderr.flush()
        self.comm.Abort(1)

    def check_identical(self, array: np.ndarray, what: str) -> None:
        """Raise, on every rank, if ``array`` differs in any bit between ranks (16-byte digests gathered)."""
        digest = hashlib.blake2b(memoryview(np.ascontiguousarray(array)).cast("B"), digest_size=16).digest()
        digests = self.comm.allgather(digest)
        if len(set(digests)) > 1:
            differ = [r for r, d in enumerate(digests) if d != digests[0]]
            raise RuntimeError(f"{what} differ between ranks (ranks {differ} differ from rank 0): the ranks no "
                               "longer train the same model; stopping the job")


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
