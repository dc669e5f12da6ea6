// Ponder's one door to MPI (STYLE.md §10). Nothing here links libmpi: `ponder_mpi_open` dlopens it at
// run time, only when the process was started by mpirun, so a single-machine build and run need no
// MPI library installed. Handles such as MPI_COMM_WORLD and MPI_FLOAT are macros whose values
// differ between MPI implementations; for Open MPI they are the addresses of exported objects
// (ompi_mpi_comm_world, ompi_mpi_float, …), which this shim resolves with dlsym.
//
// Every function returns an MPI error code (0 = MPI_SUCCESS) unless said otherwise.
#ifndef PONDER_CMPISHIM_H
#define PONDER_CMPISHIM_H

#include <stddef.h>
#include <stdint.h>

/// Opens the MPI library at `path` (NULL: "libmpi.so.40", Open MPI's ABI) and resolves every entry
/// point and handle. Returns 0, or -1 with a message in `err`.
int ponder_mpi_open(const char *path, char *err, size_t err_len);

/// MPI_Init; then the rank and size of MPI_COMM_WORLD.
int ponder_mpi_init(int *rank, int *size);
int ponder_mpi_finalize(void);
/// MPI_Abort(MPI_COMM_WORLD, code): ends every rank of the job.
void ponder_mpi_abort(int code);
int ponder_mpi_barrier(void);

/// In-place sum of `count` doubles over all ranks (MPI_Allreduce, MPI_IN_PLACE).
int ponder_mpi_allreduce_sum_f64(double *buf, int count);
/// MPI_Alltoall of floats: block r of `send` (`block` floats) goes to rank r; block r of `recv`
/// comes from rank r.
int ponder_mpi_alltoall_f32(const float *send, float *recv, int block);
/// MPI_Allgather of floats: `recv` holds every rank's `count` floats in rank order.
int ponder_mpi_allgather_f32(const float *send, float *recv, int count);
/// MPI_Allgatherv of bytes: rank r's `counts[r]` bytes land at `recv + displs[r]`.
int ponder_mpi_allgatherv_bytes(const void *send, int count, void *recv, const int *counts, const int *displs);
/// MPI_Allgather of one int per rank.
int ponder_mpi_allgather_int(int value, int *recv);
/// MPI_Bcast of bytes from `root`.
int ponder_mpi_bcast_bytes(void *buf, int count, int root);
/// The library's version string (MPI_Get_library_version) into `out`.
int ponder_mpi_library_version(char *out, int out_len);

#endif
