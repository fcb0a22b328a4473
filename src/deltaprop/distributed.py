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

import numpy as np

from .errors import ConfigError

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
