/* MPI_Allreduce timed from C on the sizes bench/distributed.mjs gives rg.distributed.allReduce: the floor that our
 * path (a read of the tensor, the communication thread, the write back) is compared with. Every size runs a few
 * untimed calls, then `reps` timed ones between barriers; rank 0 prints one JSON line per size with the slowest
 * rank's seconds per call.
 *   mpirun -np 2 allreduce <reps> <bytes> [<bytes> …] */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  const long reps_max = argc > 1 ? atol(argv[1]) : 100;
  for (int a = 2; a < argc; a++) {
    const long bytes = atol(argv[a]);
    const long n = bytes / 4;
    float* buf = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    for (long i = 0; i < n; i++) buf[i] = (float)(rank + 1) * 1e-3f;
    /* about 0.5 s of traffic per size, at least 5 calls */
    long reps = 400000000L / (bytes > 0 ? bytes : 1);
    if (reps > reps_max) reps = reps_max;
    if (reps < 5) reps = 5;
    for (int w = 0; w < 3; w++) MPI_Allreduce(MPI_IN_PLACE, buf, (int)n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    MPI_Barrier(MPI_COMM_WORLD);
    const double t0 = MPI_Wtime();
    for (long r = 0; r < reps; r++) MPI_Allreduce(MPI_IN_PLACE, buf, (int)n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    double mine = (MPI_Wtime() - t0) / (double)reps, slowest = 0;
    MPI_Reduce(&mine, &slowest, 1, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
    if (rank == 0) printf("{\"bytes\":%ld,\"reps\":%ld,\"seconds\":%.9g}\n", bytes, reps, slowest);
    fflush(stdout);
    free(buf);
  }
  MPI_Finalize();
  return 0;
}
