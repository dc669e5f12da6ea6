// See include/cmpishim.h. Open MPI (libmpi.so.40, the ABI of Open MPI 3.x-5.x) is the one MPI
// supported: MPICH's handles are integer constants rather than exported objects, and its functions
// take `int` handles, so it would need a second set of signatures; ponder_mpi_open says so clearly.
#include "cmpishim.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

typedef void *Handle;  // Open MPI: MPI_Comm, MPI_Datatype and MPI_Op are pointers to these objects.

static struct {
    int (*init)(int *, char ***);
    int (*finalize)(void);
    int (*abort)(Handle, int);
    int (*barrier)(Handle);
    int (*comm_rank)(Handle, int *);
    int (*comm_size)(Handle, int *);
    int (*allreduce)(const void *, void *, int, Handle, Handle, Handle);
    int (*alltoall)(const void *, int, Handle, void *, int, Handle, Handle);
    int (*allgather)(const void *, int, Handle, void *, int, Handle, Handle);
    int (*allgatherv)(const void *, int, Handle, void *, const int *, const int *, Handle, Handle);
    int (*bcast)(void *, int, Handle, int, Handle);
    int (*library_version)(char *, int *);
    Handle comm_world, f32, f64, byte, int32, sum, in_place;
} mpi;

static int resolve(void *lib, const char *name, void **out, char *err, size_t err_len) {
    *out = dlsym(lib, name);
    if (*out == NULL) {
        snprintf(err, err_len, "the MPI library lacks %s: Ponder supports Open MPI (libmpi.so.40); "
                 "MPICH and its derivatives are not supported", name);
        return -1;
    }
    return 0;
}

int ponder_mpi_open(const char *path, char *err, size_t err_len) {
    const char *name = path ? path : "libmpi.so.40";
    // RTLD_GLOBAL: Open MPI's own plugins (mca_*.so), which it dlopens later, resolve libmpi's
    // symbols from the global namespace.
    void *lib = dlopen(name, RTLD_NOW | RTLD_GLOBAL);
    if (lib == NULL) {
        snprintf(err, err_len, "cannot load %s (%s): install Open MPI (apt-get install libopenmpi-dev openmpi-bin) "
                 "or set PONDER_MPI_LIBRARY to its libmpi.so", name, dlerror());
        return -1;
    }
    struct { const char *name; void **slot; } table[] = {
        {"MPI_Init", (void **)&mpi.init}, {"MPI_Finalize", (void **)&mpi.finalize},
        {"MPI_Abort", (void **)&mpi.abort}, {"MPI_Barrier", (void **)&mpi.barrier},
        {"MPI_Comm_rank", (void **)&mpi.comm_rank}, {"MPI_Comm_size", (void **)&mpi.comm_size},
        {"MPI_Allreduce", (void **)&mpi.allreduce}, {"MPI_Alltoall", (void **)&mpi.alltoall},
        {"MPI_Allgather", (void **)&mpi.allgather}, {"MPI_Allgatherv", (void **)&mpi.allgatherv},
        {"MPI_Bcast", (void **)&mpi.bcast}, {"MPI_Get_library_version", (void **)&mpi.library_version},
        // The predefined handles: MPI_COMM_WORLD is &ompi_mpi_comm_world, and so on.
        {"ompi_mpi_comm_world", &mpi.comm_world}, {"ompi_mpi_float", &mpi.f32},
        {"ompi_mpi_double", &mpi.f64}, {"ompi_mpi_byte", &mpi.byte}, {"ompi_mpi_int", &mpi.int32},
        {"ompi_mpi_op_sum", &mpi.sum},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        if (resolve(lib, table[i].name, table[i].slot, err, err_len) != 0) return -1;
    }
    mpi.in_place = (Handle)1;  // Open MPI's MPI_IN_PLACE is ((void *) 1)
    return 0;
}

int ponder_mpi_init(int *rank, int *size) {
    int rc = mpi.init(NULL, NULL);
    if (rc != 0) return rc;
    // MPI_COMM_WORLD keeps MPI_ERRORS_ARE_FATAL, the default: any failed call ends the whole job.
    rc = mpi.comm_rank(mpi.comm_world, rank);
    return rc != 0 ? rc : mpi.comm_size(mpi.comm_world, size);
}

int ponder_mpi_finalize(void) { return mpi.finalize(); }
void ponder_mpi_abort(int code) { mpi.abort(mpi.comm_world, code); }
int ponder_mpi_barrier(void) { return mpi.barrier(mpi.comm_world); }

int ponder_mpi_allreduce_sum_f64(double *buf, int count) {
    return mpi.allreduce(mpi.in_place, buf, count, mpi.f64, mpi.sum, mpi.comm_world);
}

int ponder_mpi_alltoall_f32(const float *send, float *recv, int block) {
    return mpi.alltoall(send, block, mpi.f32, recv, block, mpi.f32, mpi.comm_world);
}

int ponder_mpi_allgather_f32(const float *send, float *recv, int count) {
    return mpi.allgather(send, count, mpi.f32, recv, count, mpi.f32, mpi.comm_world);
}

int ponder_mpi_allgatherv_bytes(const void *send, int count, void *recv, const int *counts, const int *displs) {
    return mpi.allgatherv(send, count, mpi.byte, recv, counts, displs, mpi.byte, mpi.comm_world);
}

int ponder_mpi_allgather_int(int value, int *recv) {
    return mpi.allgather(&value, 1, mpi.int32, recv, 1, mpi.int32, mpi.comm_world);
}

int ponder_mpi_bcast_bytes(void *buf, int count, int root) {
    return mpi.bcast(buf, count, mpi.byte, root, mpi.comm_world);
}

int ponder_mpi_library_version(char *out, int out_len) {
    int len = 0;
    char buf[8192];  // MPI_MAX_LIBRARY_VERSION_STRING is 256 in Open MPI; be generous
    int rc = mpi.library_version(buf, &len);
    if (rc == 0) snprintf(out, (size_t)out_len, "%.*s", len, buf);
    return rc;
}
