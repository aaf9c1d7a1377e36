// Collectives between the GPUs of several processes (core/device.h's device collectives) through NCCL, loaded at run
// time: libnccl.so.2 is opened with dlopen the first time a communicator is asked for, and the few functions used are
// declared here (NCCL's ABI: C enums passed as int, the id a 128-byte struct passed by value), so building the CUDA
// addon needs no NCCL package. The id of a communicator travels between the ranks over MPI (lib/distributed.ts).
//
// An all-reduce runs on a stream of its own: it waits (an event) for the work issued on the main stream before it,
// and the main stream waits for it (another event) only where allReduceWait was queued, so the kernels queued in
// between (the rest of a backward) run while the GPUs communicate. The storages are held by the addon's collective
// until that wait has been issued, and the caching allocator hands a block out again only in main-stream order, after
// it. The mean is NCCL's ncclAvg (NCCL 2.10 and newer).
#include <cuda_runtime.h>
#include <dlfcn.h>

#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include "../core/device.h"
#include "cuda_status.h"
#include "kernels.h"

namespace rg::device {

namespace {

// NCCL's declarations, as far as they are used (nccl.h, NCCL 2.10 and newer).
using NcclResult = int;  // ncclResult_t: 0 is ncclSuccess
using NcclComm = struct NcclCommOpaque*;
struct NcclUniqueId {
  char internal[128];
};
constexpr int kNcclFloat32 = 7;  // ncclDataType_t ncclFloat32
constexpr int kNcclSum = 0;      // ncclRedOp_t ncclSum
constexpr int kNcclAvg = 4;      // ncclRedOp_t ncclAvg (2.10)
constexpr int kNcclMinVersion = 21000;

struct Nccl {
  NcclResult (*get_version)(int*) = nullptr;
  NcclResult (*get_unique_id)(NcclUniqueId*) = nullptr;
  NcclResult (*comm_init_rank)(NcclComm*, int, NcclUniqueId, int) = nullptr;
  NcclResult (*all_reduce)(const void*, void*, size_t, int, int, NcclComm, cudaStream_t) = nullptr;
  NcclResult (*group_start)() = nullptr;
  NcclResult (*group_end)() = nullptr;
  const char* (*get_error_string)(NcclResult) = nullptr;
  std::string unavailable;  // "" when loaded
};

template <typename F>
bool find(void* lib, const char* name, F* out) {
  *out = reinterpret_cast<F>(dlsym(lib, name));
  return *out != nullptr;
}

const Nccl& nccl() {
  static Nccl api;
  static std::once_flag once;
  std::call_once(once, [] {
    void* lib = dlopen("libnccl.so.2", RTLD_NOW | RTLD_LOCAL);
    const char* why = lib ? nullptr : dlerror();
    const std::string first = why ? why : "not found";
    if (!lib) lib = dlopen("libnccl.so", RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
      api.unavailable = "NCCL could not be loaded (" + first +
                        "); install NCCL (e.g. the nvidia-nccl-cu12 wheel's library on LD_LIBRARY_PATH, or libnccl2)";
      return;
    }
    if (!find(lib, "ncclGetVersion", &api.get_version) || !find(lib, "ncclGetUniqueId", &api.get_unique_id) ||
        !find(lib, "ncclCommInitRank", &api.comm_init_rank) || !find(lib, "ncclAllReduce", &api.all_reduce) ||
        !find(lib, "ncclGroupStart", &api.group_start) || !find(lib, "ncclGroupEnd", &api.group_end) ||
        !find(lib, "ncclGetErrorString", &api.get_error_string)) {
      api.unavailable = "the NCCL library found lacks a function retrograd needs (NCCL 2.10 or newer is needed)";
      return;
    }
    int version = 0;
    if (api.get_version(&version) != 0 || version < kNcclMinVersion)
      api.unavailable = "NCCL " + std::to_string(version) + " is too old: 2.10 or newer is needed (ncclAvg)";
  });
  return api;
}

Status nccl_status(const char* what, NcclResult r) {
  if (r == 0) return Status::Ok();
  return Status::Cuda(std::string(what) + ": " + nccl().get_error_string(r));
}


struct Communicator {
  NcclComm comm = nullptr;
  cudaStream_t stream = nullptr;
};
Communicator g_comm;  // queue thread (set once by device_collectives_init)

// What a started all-reduce leaves for its wait.
struct Ticket {
  cudaEvent_t finished = nullptr;
  ~Ticket() {
    if (finished) cudaEventDestroy(finished);  // released once the event has completed
  }
};

cudaStream_t main() { return static_cast<cudaStream_t>(cuda::main_stream()); }

}  // namespace

std::string device_collectives_unavailable() {
  if (!nccl().unavailable.empty()) return nccl().unavailable;
  return g_comm.comm ? "" : "no NCCL communicator yet";
}

Status device_collectives_id(std::string* id) {
  if (!nccl().unavailable.empty()) return Status::Invalid(nccl().unavailable);
  NcclUniqueId u{};
  Status s = nccl_status("ncclGetUniqueId", nccl().get_unique_id(&u));
  if (s.ok()) id->assign(u.internal, sizeof u.internal);
  return s;
}

Status device_collectives_init(const std::string& id, int rank, int size) {
  if (!nccl().unavailable.empty()) return Status::Invalid(nccl().unavailable);
  if (g_comm.comm) return Status::Ok();
  if (id.size() != sizeof(NcclUniqueId)) return Status::Invalid("NCCL: a communicator id has " + std::to_string(sizeof(NcclUniqueId)) + " bytes");
  NcclUniqueId u{};
  std::memcpy(u.internal, id.data(), sizeof u.internal);
  Communicator c;
  Status s = cuda::cuda_status("NCCL stream", cudaStreamCreateWithFlags(&c.stream, cudaStreamNonBlocking));
  if (s.ok()) s = nccl_status("ncclCommInitRank", nccl().comm_init_rank(&c.comm, size, u, rank));
  if (!s.ok()) {
    if (c.stream) cudaStreamDestroy(c.stream);
    return s;
  }
  g_comm = c;
  return Status::Ok();
}

Status device_all_reduce_start(const std::vector<StoragePtr>& storages, bool mean, std::shared_ptr<void>* ticket) {
  if (!g_comm.comm) return Status::Invalid("NCCL: no communicator (rg.distributed.init() sets it up for the cuda backend)");
  auto t = std::make_shared<Ticket>();
  cudaEvent_t issued = nullptr;
  Status s = cuda::cuda_status("NCCL event", cudaEventCreateWithFlags(&issued, cudaEventDisableTiming));
  if (s.ok()) s = cuda::cuda_status("NCCL event", cudaEventCreateWithFlags(&t->finished, cudaEventDisableTiming));
  if (s.ok()) s = cuda::cuda_status("NCCL event", cudaEventRecord(issued, main()));
  if (s.ok()) s = cuda::cuda_status("NCCL stream", cudaStreamWaitEvent(g_comm.stream, issued, 0));
  if (issued) cudaEventDestroy(issued);
  if (!s.ok()) return s;
  // one launch for the whole bucket
  s = nccl_status("ncclGroupStart", nccl().group_start());
  for (size_t i = 0; s.ok() && i < storages.size(); i++) {
    Storage& st = *storages[i];
    if (st.size() == 0) continue;
    s = nccl_status("ncclAllReduce", nccl().all_reduce(st.raw(), st.raw(), st.size(), kNcclFloat32, mean ? kNcclAvg : kNcclSum, g_comm.comm, g_comm.stream));
  }
  Status ended = nccl_status("ncclGroupEnd", nccl().group_end());
  if (s.ok()) s = ended;
  if (s.ok()) s = cuda::cuda_status("NCCL event", cudaEventRecord(t->finished, g_comm.stream));
  if (s.ok()) *ticket = std::move(t);
  return s;
}

Status device_all_reduce_wait(const std::shared_ptr<void>& ticket) {
  auto* t = static_cast<Ticket*>(ticket.get());
  if (!t) return Status::Invalid("NCCL: the all-reduce was not started");
  return cuda::cuda_status("NCCL wait", cudaStreamWaitEvent(main(), t->finished, 0));
}

}  // namespace rg::device
