// The optional MPI addon (build-mpi/Release/retrograd_mpi.node, built by scripts/install-mpi.mjs with mpicxx where
// MPI's headers are found): collectives between the processes that a launcher (mpirun) started.
//
// Every MPI call runs on one communication thread that this addon owns: it initialises MPI with
// MPI_THREAD_FUNNELED (checked), then takes jobs from a queue in order, so collectives keep the order in which
// JavaScript asked for them and never block the event loop. Data crosses as plain C++ vectors copied on the main
// thread; a job's result is turned into JavaScript values back on the main thread (a thread-safe function), and
// nothing on the communication thread touches Node-API.
//
// Node loads addons with RTLD_LOCAL, so Open MPI's plugins could not see libmpi's symbols; libmpi is re-opened
// RTLD_GLOBAL before MPI_Init_thread. MPI errors are returned (MPI_ERRORS_RETURN), never fatal: a failing call
// rejects its promise with MPI's message. At the environment's teardown the thread finalises MPI and is joined.
#include <dlfcn.h>
#include <mpi.h>
#include <napi.h>

#include "../core/collectives.h"

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace {

struct Job {
  // Runs on the communication thread; returns an error message, or "" on success.
  std::function<std::string()> run;
  // Builds the promise's value on the main thread.
  std::function<Napi::Value(Napi::Env)> result;
  std::string error;
  bool invalid_argument = false;  // the error is a caller's mistake (the ranks disagree on a size)
  // A job from JavaScript settles a promise on the main thread; a job from a compute addon's command queue
  // (collectives.h) calls `done` on the communication thread instead.
  std::optional<Napi::Promise::Deferred> deferred;
  rg::CollectiveDone done = nullptr;
  void* ctx = nullptr;
  explicit Job(Napi::Env env) : deferred(Napi::Promise::Deferred::New(env)) {}
  Job(rg::CollectiveDone d, void* c) : done(d), ctx(c) {}
};

std::string mpi_error(const char* what, int code) {
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  if (MPI_Error_string(code, text, &len) != MPI_SUCCESS) len = 0;
  return std::string(what) + " failed: " + (len ? std::string(text, len) : "MPI error " + std::to_string(code));
}

class Comm {
 public:
  explicit Comm(Napi::Env env) {
    tsfn_ = Napi::ThreadSafeFunction::New(env, Napi::Function(), "retrograd-mpi", 0, 1);
    tsfn_.Unref(env);  // an idle communicator does not keep the process alive; a pending collective does (submit)
    thread_ = std::thread([this] { loop(); });
  }

  // Queues a job; its promise settles on the main thread.
  Napi::Promise submit(Napi::Env env, std::unique_ptr<Job> job) {
    Napi::Promise p = job->deferred->Promise();
    if (pending_++ == 0) tsfn_.Ref(env);  // main thread only, as is the decrement in settle
    {
      std::lock_guard<std::mutex> lock(mu_);
      queue_.push_back(std::move(job));
    }
    cv_.notify_one();
    return p;
  }

  // Queues a job from a compute addon's command queue (any thread); after teardown it is refused at once.
  void submit_native(std::unique_ptr<Job> job) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!stop_) {
        queue_.push_back(std::move(job));
        job = nullptr;
      }
    }
    if (job) job->done(job->ctx, "the MPI communication thread has stopped (the environment is being torn down)", 0);
    else cv_.notify_one();
  }

  // At teardown: finalise MPI on the communication thread (after the jobs already queued), then join it.
  void shutdown() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_one();
    if (thread_.joinable()) thread_.join();
    tsfn_.Abort();
  }

  bool initialized = false;  // by this addon (so finalised by it)
  bool ready = false;        // MPI can be called (communication thread only)
  int rank = 0, size = 1, provided = 0;
  rg::CollectivesTable table{rg::kCollectivesVersion, this, nullptr, nullptr};

 private:
  void loop() {
    for (;;) {
      std::unique_ptr<Job> job;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
        if (queue_.empty()) break;  // stop_ and nothing left
        job = std::move(queue_.front());
        queue_.pop_front();
      }
      job->error = job->run();
      if (job->done) {
        job->done(job->ctx, job->error.empty() ? nullptr : job->error.c_str(), job->invalid_argument ? 1 : 0);
        continue;
      }
      Job* raw = job.release();
      if (tsfn_.BlockingCall(raw, [this](Napi::Env env, Napi::Function, Job* j) {
            std::unique_ptr<Job> owned(j);
            if (--pending_ == 0) tsfn_.Unref(env);
            if (j->error.empty()) j->deferred->Resolve(j->result(env));
            else j->deferred->Reject(Napi::Error::New(env, j->error).Value());
          }) != napi_ok)
        delete raw;  // the environment is going away: nobody waits for this promise
    }
    int done = 0;
    if (initialized && MPI_Finalized(&done) == MPI_SUCCESS && !done) MPI_Finalize();
  }

  Napi::ThreadSafeFunction tsfn_;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::unique_ptr<Job>> queue_;
  bool stop_ = false;
  int pending_ = 0;  // jobs submitted and not yet settled (main thread)
};

Comm* comm_of(const Napi::CallbackInfo& info) {
  return static_cast<Comm*>(info.Data());
}

std::vector<float> floats_arg(const Napi::CallbackInfo& info, size_t i, const char* where) {
  if (info.Length() <= i || !info[i].IsTypedArray() || info[i].As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
    throw Napi::TypeError::New(info.Env(), std::string(where) + ": expected a Float32Array");
  auto a = info[i].As<Napi::Float32Array>();
  return std::vector<float>(a.Data(), a.Data() + a.ElementLength());
}

Napi::Value to_array(Napi::Env env, const std::vector<float>& v) {
  auto out = Napi::Float32Array::New(env, v.size());
  std::copy(v.begin(), v.end(), out.Data());
  return out;
}

// init() → Promise<{ rank, size, threadLevel }>
Napi::Value Init(const Napi::CallbackInfo& info) {
  Comm* c = comm_of(info);
  auto job = std::make_unique<Job>(info.Env());
  job->run = [c]() -> std::string {
    // Open MPI's plugins resolve libmpi's symbols globally; Node opened this addon (and libmpi with it) RTLD_LOCAL
    for (const char* lib : {"libmpi.so.40", "libmpi.so.12", "libmpi.so"})
      if (dlopen(lib, RTLD_NOW | RTLD_GLOBAL | RTLD_NOLOAD)) break;
    int already = 0;
    MPI_Initialized(&already);
    if (!already) {
      const int rc = MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &c->provided);
      if (rc != MPI_SUCCESS) return mpi_error("MPI_Init_thread", rc);
      c->initialized = true;
    } else {
      MPI_Query_thread(&c->provided);
    }
    if (c->provided < MPI_THREAD_FUNNELED) return "MPI provides thread level " + std::to_string(c->provided) + ", below MPI_THREAD_FUNNELED";
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &c->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &c->size);
    c->ready = true;
    return "";
  };
  job->result = [c](Napi::Env env) -> Napi::Value {
    auto o = Napi::Object::New(env);
    o.Set("rank", c->rank);
    o.Set("size", c->size);
    o.Set("threadLevel", c->provided);
    return o;
  };
  return c->submit(info.Env(), std::move(job));
}

Napi::Value Barrier(const Napi::CallbackInfo& info) {
  Comm* c = comm_of(info);
  auto job = std::make_unique<Job>(info.Env());
  job->run = []() -> std::string {
    const int rc = MPI_Barrier(MPI_COMM_WORLD);
    return rc == MPI_SUCCESS ? "" : mpi_error("MPI_Barrier", rc);
  };
  job->result = [](Napi::Env env) -> Napi::Value { return env.Undefined(); };
  return c->submit(info.Env(), std::move(job));
}

// Collectives on more floats than MPI's int counts hold go in pieces of this many.
constexpr size_t kPiece = size_t{1} << 30;

// The elementwise sum over the ranks of n floats at data, in place (÷ size when mean).
std::string all_reduce_in_place(const Comm* c, float* data, size_t n, bool mean) {
  for (size_t at = 0; at < n; at += kPiece) {
    const int count = static_cast<int>(std::min(kPiece, n - at));
    const int rc = MPI_Allreduce(MPI_IN_PLACE, data + at, count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    if (rc != MPI_SUCCESS) return mpi_error("MPI_Allreduce", rc);
  }
  if (mean)
    for (size_t i = 0; i < n; i++) data[i] /= static_cast<float>(c->size);
  return "";
}

// Rank root's n floats at data on every rank.
std::string broadcast_in_place(float* data, size_t n, int root) {
  for (size_t at = 0; at < n; at += kPiece) {
    const int rc = MPI_Bcast(data + at, static_cast<int>(std::min(kPiece, n - at)), MPI_FLOAT, root, MPI_COMM_WORLD);
    if (rc != MPI_SUCCESS) return mpi_error("MPI_Bcast", rc);
  }
  return "";
}

// The shape check that every collective from a compute addon begins with: every rank's [ndim, d0 … d7] gathered (a
// deeper shape compares by its first 7 sizes and its element count); a mismatch is an error on every rank naming the
// shapes, instead of a hang or mixed data.
constexpr int kShapeSlots = 8;
std::vector<long long> shape_header(const int64_t* shape, int ndim, size_t n) {
  std::vector<long long> header(kShapeSlots + 1, -1);
  header[0] = ndim;
  for (int i = 0; i < std::min(ndim, kShapeSlots); i++) header[1 + i] = shape[i];
  if (ndim > kShapeSlots) header[kShapeSlots] = static_cast<long long>(n);
  return header;
}
std::string same_shapes(const Comm* c, const std::vector<long long>& header, Job* job) {
  if (!c->ready) return "rg.distributed.init() has not completed";
  std::vector<long long> all(header.size() * static_cast<size_t>(c->size));
  const int rc = MPI_Allgather(header.data(), kShapeSlots + 1, MPI_LONG_LONG, all.data(), kShapeSlots + 1, MPI_LONG_LONG, MPI_COMM_WORLD);
  if (rc != MPI_SUCCESS) return mpi_error("MPI_Allgather", rc);
  // a rank that could not read its tensors (collectives.h: ndim < 0) takes part in the check only, so every rank fails
  // together instead of the others waiting in the collective for it
  for (int r = 0; r < c->size; r++)
    if (all[static_cast<size_t>(r) * (kShapeSlots + 1)] < 0) return "rank " + std::to_string(r) + " could not read its tensors for the collective";
  if (std::equal(all.begin(), all.end() - (kShapeSlots + 1), all.begin() + (kShapeSlots + 1))) return "";
  std::string m = "the ranks passed tensors of different shapes: ";
  for (int r = 0; r < c->size; r++) {
    const long long* h = all.data() + static_cast<size_t>(r) * (kShapeSlots + 1);
    m += std::string(r ? ", " : "") + "rank " + std::to_string(r) + " [";
    for (long long i = 0; i < std::min<long long>(h[0], kShapeSlots); i++) m += (i ? ", " : "") + std::to_string(h[1 + i]);
    m += "]";
  }
  job->invalid_argument = true;
  return m;
}

// collectives.h's all_reduce, for a compute addon's command queue: the shape check, then the sum in place.
void native_all_reduce(void* comm, float* data, size_t n, const int64_t* shape, int ndim, int mean, rg::CollectiveDone done, void* ctx) {
  auto* c = static_cast<Comm*>(comm);
  auto job = std::make_unique<Job>(done, ctx);
  job->run = [c, data, n, mean, self = job.get(), header = shape_header(shape, ndim, n)]() -> std::string {
    std::string failed = same_shapes(c, header, self);
    return failed.empty() ? all_reduce_in_place(c, data, n, mean != 0) : failed;
  };
  c->submit_native(std::move(job));
}

// collectives.h's broadcast: the shape check, then root's values everywhere.
void native_broadcast(void* comm, float* data, size_t n, const int64_t* shape, int ndim, int root, rg::CollectiveDone done, void* ctx) {
  auto* c = static_cast<Comm*>(comm);
  auto job = std::make_unique<Job>(done, ctx);
  job->run = [c, data, n, root, self = job.get(), header = shape_header(shape, ndim, n)]() -> std::string {
    if (root < 0 || root >= c->size) return "root must be a rank in 0…" + std::to_string(c->size - 1) + ", got " + std::to_string(root);
    std::string failed = same_shapes(c, header, self);
    return failed.empty() ? broadcast_in_place(data, n, root) : failed;
  };
  c->submit_native(std::move(job));
}

// collectives() → the external of this environment's table (collectives.h), tagged for the compute addons
Napi::Value Collectives(const Napi::CallbackInfo& info) {
  Comm* c = comm_of(info);
  c->table.all_reduce = native_all_reduce;
  c->table.broadcast = native_broadcast;
  auto e = Napi::External<rg::CollectivesTable>::New(info.Env(), &c->table);
  napi_type_tag_object(info.Env(), e, &rg::kCollectivesTag);
  return e;
}

// allReduce(values: Float32Array, mean: boolean) → Promise<Float32Array>: the elementwise sum over ranks (÷ size)
Napi::Value AllReduce(const Napi::CallbackInfo& info) {
  Comm* c = comm_of(info);
  auto data = std::make_shared<std::vector<float>>(floats_arg(info, 0, "allReduce"));
  const bool mean = info.Length() > 1 && info[1].ToBoolean().Value();
  auto job = std::make_unique<Job>(info.Env());
  job->run = [c, data, mean]() -> std::string { return all_reduce_in_place(c, data->data(), data->size(), mean); };
  job->result = [data](Napi::Env env) { return to_array(env, *data); };
  return c->submit(info.Env(), std::move(job));
}

// broadcast(values: Float32Array, root) → Promise<Float32Array>: root's values on every rank
Napi::Value Broadcast(const Napi::CallbackInfo& info) {
  Comm* c = comm_of(info);
  auto data = std::make_shared<std::vector<float>>(floats_arg(info, 0, "broadcast"));
  const int root = info.Length() > 1 ? info[1].As<Napi::Number>().Int32Value() : 0;
  auto job = std::make_unique<Job>(info.Env());
  job->run = [data, root]() -> std::string { return broadcast_in_place(data->data(), data->size(), root); };
  job->result = [data](Napi::Env env) { return to_array(env, *data); };
  return c->submit(info.Env(), std::move(job));
}

// allGather(values: Float32Array | Int32Array) → Promise of the same kind: every rank's values, rank after rank
Napi::Value AllGather(const Napi::CallbackInfo& info) {
  Comm* c = comm_of(info);
  if (info.Length() < 1 || !info[0].IsTypedArray()) throw Napi::TypeError::New(info.Env(), "allGather: expected a Float32Array or an Int32Array");
  auto a = info[0].As<Napi::TypedArray>();
  const bool ints = a.TypedArrayType() == napi_int32_array;
  if (!ints && a.TypedArrayType() != napi_float32_array) throw Napi::TypeError::New(info.Env(), "allGather: expected a Float32Array or an Int32Array");
  const size_t n = a.ElementLength();
  auto in = std::make_shared<std::vector<int32_t>>(n);
  std::memcpy(in->data(), static_cast<const uint8_t*>(a.ArrayBuffer().Data()) + a.ByteOffset(), n * 4);
  auto out = std::make_shared<std::vector<int32_t>>();
  auto job = std::make_unique<Job>(info.Env());
  job->run = [c, in, out]() -> std::string {
    out->resize(in->size() * static_cast<size_t>(c->size));
    const int rc = MPI_Allgather(in->data(), static_cast<int>(in->size()), MPI_INT32_T, out->data(), static_cast<int>(in->size()), MPI_INT32_T, MPI_COMM_WORLD);
    return rc == MPI_SUCCESS ? "" : mpi_error("MPI_Allgather", rc);
  };
  job->result = [out, ints](Napi::Env env) -> Napi::Value {
    if (ints) {
      auto r = Napi::Int32Array::New(env, out->size());
      std::memcpy(r.Data(), out->data(), out->size() * 4);
      return r;
    }
    auto r = Napi::Float32Array::New(env, out->size());
    std::memcpy(r.Data(), out->data(), out->size() * 4);
    return r;
  };
  return c->submit(info.Env(), std::move(job));
}

Napi::Object InitAddon(Napi::Env env, Napi::Object exports) {
  auto* c = new Comm(env);
  // The communicator is stopped at teardown but never freed: a compute addon's queue, torn down after this hook, may
  // still hand it collectives through its table, which it then refuses (submit_native) instead of touching freed memory.
  env.AddCleanupHook([c]() { c->shutdown(); });
  exports.Set("init", Napi::Function::New(env, Init, "init", c));
  exports.Set("barrier", Napi::Function::New(env, Barrier, "barrier", c));
  exports.Set("allReduce", Napi::Function::New(env, AllReduce, "allReduce", c));
  exports.Set("broadcast", Napi::Function::New(env, Broadcast, "broadcast", c));
  exports.Set("allGather", Napi::Function::New(env, AllGather, "allGather", c));
  exports.Set("collectives", Napi::Function::New(env, Collectives, "collectives", c));
  return exports;
}

}  // namespace

NODE_API_MODULE(retrograd_mpi, InitAddon)
