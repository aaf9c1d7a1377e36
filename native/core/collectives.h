// How the MPI addon (native/mpi/) lends its communication thread to the compute addons (CPU, CUDA), so that a
// collective on native tensors is queued with the kernels: the command queue's thread gathers the tensors' bytes in
// command order (after the kernels that wrote them, while later ones run), hands them to the communication thread,
// and a later command waits for the result and scatters it back. Nothing crosses through JavaScript.
//
// The MPI addon gives JavaScript its table as an external tagged with kCollectivesTag; a compute addon uses an
// external only when it carries that tag and the table's version is its own. The table lives as long as the MPI
// addon's environment; after its teardown all_reduce reports an error instead of running.
#pragma once
#include <node_api.h>

#include <cstddef>
#include <cstdint>

namespace rg {

// Called once on the communication thread when a collective has finished: error is null on success, else a message
// (valid during the call); invalid_argument tells a caller's mistake (the ranks passed different sizes) from a failure.
using CollectiveDone = void (*)(void* ctx, const char* error, int invalid_argument);

struct CollectivesTable {
  uint32_t version;
  void* comm;
  // Queues, after the jobs queued before it: a check that every rank passes the same shape (ndim sizes whose product
  // is n), then the elementwise sum of the n floats at data over the ranks, in place (mean != 0: divided by the
  // number of ranks). data must stay valid and untouched until done has been called; shape is read before it returns.
  // A rank that could not gather its data passes ndim −1 (and no data): every rank's collective then fails, naming it.
  void (*all_reduce)(void* comm, float* data, size_t n, const int64_t* shape, int ndim, int mean, CollectiveDone done, void* ctx);
  // As all_reduce, but rank `root`'s n floats replace every other rank's.
  void (*broadcast)(void* comm, float* data, size_t n, const int64_t* shape, int ndim, int root, CollectiveDone done, void* ctx);
};

constexpr uint32_t kCollectivesVersion = 2;
constexpr napi_type_tag kCollectivesTag = {0x72657472'6f677261ULL, 0x642d636f'6c6c6563ULL};

}  // namespace rg
