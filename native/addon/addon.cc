// The Node-API boundary of the native backends (the CPU addon, and the CUDA addon built from the same source
// with native/cuda/ behind core/device.h). It unpacks and checks every argument (types, dtypes, lengths,
// null and disposed handles) against the kernel table, then queues the kernel on this environment's
// command queue; reads wait for the queue. It never does arithmetic and never terminates the process: every
// failure becomes a JavaScript RetrogradError with a stable `code`.
//
// Context-aware: each Node environment (the main thread, each worker thread) gets its own queue and thread
// pool through Napi::Addon instance data, torn down with the environment.
#include <napi.h>

#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_set>
#include <vector>

#include "../core/collectives.h"
#include "../core/device.h"
#include "../core/queue.h"
#include "../core/storage.h"
#include "kernel_table.h"

namespace rg::addon {

class RetrogradAddon;

// Throws a RetrogradError (the class lib/ registers through setErrorClass) or, before that, an Error, with
// `code` set.
Napi::Error make_error(Napi::Env env, const char* code, const std::string& message);

// Tells V8 of native bytes so that its garbage collector runs when they add up. node-addon-api's wrapper aborts
// the process when the call fails, which it does while a worker's environment is being torn down (terminate()):
// the raw call's status is ignored instead, as the count no longer matters then.
// A release runs inside a garbage collection (the storage's finalizer): it reports a decrease, which V8 takes without
// starting anything (an increase can start a collection, which must not happen from inside another; batching the
// reports crashed V8 that way).
inline void adjust_external_memory(node_api_basic_env env, int64_t change) {
  int64_t total;
  napi_adjust_external_memory(env, change, &total);
}

// A storage JavaScript holds, through either kind of handle (a NativeStorage object, or the external the backend uses).
struct HeldStorage {
  StoragePtr storage;  // null once released
  std::shared_ptr<Retired> retired;

  // Takes s, telling V8 of its bytes (outside a collection: an increase).
  void hold(node_api_basic_env env, StoragePtr s, std::shared_ptr<Retired> r) {
    storage = std::move(s);
    retired = std::move(r);
    adjust_external_memory(env, static_cast<int64_t>(storage->bytes()));
  }
  // Lets go of the storage now (also inside a collection: it reports a decrease); it is freed once the commands queued
  // before have run.
  void release(node_api_basic_env env) {
    if (!storage) return;
    adjust_external_memory(env, -static_cast<int64_t>(storage->bytes()));
    retired->retire(std::move(storage));
    storage.reset();
  }
};

// The handles alive on this thread (each Node environment has its own): a value is taken as a storage only when its
// wrapped or external pointer is one of them (napi_unwrap hands back whatever any addon wrapped). One hash lookup
// where a type tag cost a second property lookup of the object, per buffer of every kernel call. (Internal linkage,
// and the addons are built with hidden visibility: the CPU and CUDA addons in one process must not share these
// sets, as a GNU-unique symbol of an inline function would make them.)
static std::unordered_set<const void*>& live_handles() {
  thread_local std::unordered_set<const void*> live;
  return live;
}

// A native storage as JavaScript sees it: { size, dtype, dispose() }.
class NativeStorage : public Napi::ObjectWrap<NativeStorage> {
 public:
  static Napi::Function define(Napi::Env env) {
    return DefineClass(env, "NativeStorage",
                       {InstanceAccessor<&NativeStorage::size>("size"), InstanceAccessor<&NativeStorage::dtype>("dtype"),
                        InstanceAccessor<&NativeStorage::disposed>("disposed"),
                        InstanceMethod<&NativeStorage::dispose>("dispose")});
  }

  explicit NativeStorage(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NativeStorage>(info) { live_handles().insert(this); }
  ~NativeStorage() override {
    live_handles().erase(this);
    held_.release(Env());
  }

  void attach(Napi::Env env, StoragePtr s, std::shared_ptr<Retired> retired) {
    size_ = s->size();
    dtype_ = s->dtype();
    held_.hold(env, std::move(s), std::move(retired));
  }
  HeldStorage& held() { return held_; }

 private:
  Napi::Value size(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), static_cast<double>(size_)); }
  Napi::Value dtype(const Napi::CallbackInfo& info) {
    return Napi::String::New(info.Env(), dtype_ == DType::F32 ? "float32" : "int32");
  }
  Napi::Value disposed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), !held_.storage); }
  void dispose(const Napi::CallbackInfo& info) { held_.release(info.Env()); }

  HeldStorage held_;
  size_t size_ = 0;
  DType dtype_ = DType::F32;
};

// The backend's handles (lib/backends/native.ts asks for them) are Node-API externals of a HeldStorage, which cost a
// third less to make than a NativeStorage (no JavaScript constructor runs for them). JavaScript can only hand one back
// to the addon: to kernels, reads and writes like a NativeStorage, and to release() to free it now. This finalizer runs
// inside the garbage collection that finds the handle dead (a basic finalizer: nothing that calls JavaScript).
inline void finalize_external(node_api_basic_env env, void* data, void* /* hint */) {
  auto* h = static_cast<HeldStorage*>(data);
  live_handles().erase(h);
  h->release(env);
  delete h;
}

// The storage a JavaScript value holds when it is one of this thread's handles, of either kind; else null.
inline HeldStorage* held_by(napi_env env, napi_value v) {
  napi_valuetype type;
  void* p = nullptr;
  if (napi_typeof(env, v, &type) != napi_ok) return nullptr;
  if (type == napi_external) {
    napi_get_value_external(env, v, &p);
    return live_handles().count(p) ? static_cast<HeldStorage*>(p) : nullptr;
  }
  if (type != napi_object || napi_unwrap(env, v, &p) != napi_ok || !live_handles().count(p)) return nullptr;
  return &static_cast<NativeStorage*>(p)->held();
}

// An asynchronous read: a command queued in order starts copying the storage into a host buffer (so later
// commands may overwrite the storage at once); a libuv worker waits for that command and for the copy to land,
// off the main thread, and the promise resolves with the data. With no storage it waits for the device to
// finish everything queued (syncAsync).
class ReadWorker : public Napi::AsyncWorker {
 public:
  ReadWorker(Napi::Env env, CommandQueue& queue, StoragePtr storage)
      : Napi::AsyncWorker(env, "retrograd.read"), deferred_(Napi::Promise::Deferred::New(env)), queue_(queue),
        dtype_(storage ? storage->dtype() : DType::F32), has_storage_(storage != nullptr) {
    if (storage) {
      host_ = device::host_buffer(storage->bytes());
      if (!host_) throw make_error(env, "OUT_OF_MEMORY", "read: could not allocate " + std::to_string(storage->bytes()) + " bytes of host memory");
      auto host = host_;
      seq_ = queue_.enqueue([storage, host](ThreadPool&) { return device::download(*host, *storage); }, true);
    } else {
      seq_ = queue_.enqueue([](ThreadPool&) { return device::fence(); });
    }
    queue_.register_read(seq_);
  }
  ~ReadWorker() override {
    if (!delivered_) queue_.take_read_error(seq_);  // unregisters a read that never reached OnOK (teardown)
  }
  Napi::Promise promise() { return deferred_.Promise(); }

 protected:
  void Execute() override {
    queue_.wait_for(seq_);
    if (host_) status_ = device::finish(*host_);
  }
  void OnOK() override {
    Napi::Env env = Env();
    queue_.retired()->sweep();
    // Taken here, on the JavaScript thread, so that every command queued before the rejection is delivered is
    // skipped (see CommandQueue::take_error).
    delivered_ = true;
    Status failed = queue_.take_read_error(seq_);
    if (!failed.ok()) status_ = std::move(failed);
    if (!status_.ok()) {
      deferred_.Reject(make_error(env, code_name(status_.code), status_.message).Value());
      return;
    }
    if (!has_storage_) {
      deferred_.Resolve(env.Undefined());
      return;
    }
    const size_t n = host_->bytes() / 4;
    auto ab = Napi::ArrayBuffer::New(env, n * 4);
    if (n) std::memcpy(ab.Data(), host_->data(), n * 4);
    if (dtype_ == DType::F32) deferred_.Resolve(Napi::Float32Array::New(env, n, ab, 0));
    else deferred_.Resolve(Napi::Int32Array::New(env, n, ab, 0));
  }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  CommandQueue& queue_;
  std::shared_ptr<device::HostBuffer> host_;
  DType dtype_;
  bool has_storage_;
  uint64_t seq_ = 0;
  bool delivered_ = false;
  Status status_;
};

// One all-reduce of a group of float tensors (a bucket of gradients) over the ranks, through the MPI addon's
// communication thread (core/collectives.h). allReduceStart queues a command that copies the tensors into one host
// buffer, after the kernels that wrote them, and hands it over; allReduceWait queues a command that waits for the
// result and copies it back. The kernels queued between the two (the rest of a backward) run while the ranks
// communicate. Both commands run even after a failure, so that every rank takes part in every collective.
struct Collective {
  std::string what = "distributed.allReduce";  // its errors' prefix
  std::vector<StoragePtr> storages;
  bool on_device = false;          // through the device's own collectives (NCCL), not MPI
  bool skipped = false;            // (on the device) its shape check failed on every rank
  bool poisoned = false;           // this rank could not gather its data: handed over as ndim −1
  std::shared_ptr<void> ticket;    // the device all-reduce's, for its wait
  std::shared_ptr<device::HostBuffer> staging;
  size_t floats = 0;
  std::vector<int64_t> shape;
  bool handed_over = false;  // queue thread
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  bool invalid_argument = false;
  std::string error;
  // For DistributedDataParallel's stats: from the hand-over to the result, and how long the queue waited for it.
  std::chrono::steady_clock::time_point handed, finished;
  double waited_ms = 0;
  bool waited = false;
};

// collectives.h's completion, on the communication thread; ctx is a heap copy of the collective's shared pointer.
inline void collective_done(void* ctx, const char* error, int invalid_argument) {
  std::unique_ptr<std::shared_ptr<Collective>> keep(static_cast<std::shared_ptr<Collective>*>(ctx));
  Collective& c = **keep;
  {
    std::lock_guard<std::mutex> lock(c.mu);
    c.done = true;
    c.finished = std::chrono::steady_clock::now();
    if (error) {
      c.error = error;
      c.invalid_argument = invalid_argument != 0;
    }
  }
  c.cv.notify_all();
}

// Tags the handles allReduceStart returns, so that allReduceWait takes nothing else.
constexpr napi_type_tag kCollectiveHandleTag = {0x72672d63'6f6c6c2dULL, 0x68616e64'6c652d31ULL};

class RetrogradAddon : public Napi::Addon<RetrogradAddon> {
 public:
  // A device addon's queue thread only launches work: it needs no pool.
  RetrogradAddon(Napi::Env env, Napi::Object exports)
      : available_(device::init()), queue_(device::kHostStorage ? default_thread_count() : 1) {
    storage_ctor_ = Napi::Persistent(NativeStorage::define(env));
    auto names = Napi::Array::New(env, kernel_table().size());
    for (size_t i = 0; i < kernel_table().size(); i++) names.Set(static_cast<uint32_t>(i), kernel_table()[i].name);
    exports.Set("kernels", names);
    // signatures[name] = [[argument name, kind], ...]: the tests hold lib/backend.ts's contract to them
    auto signatures = Napi::Object::New(env);
    for (const KernelDef& k : kernel_table()) {
      auto args = Napi::Array::New(env, k.args.size());
      for (size_t a = 0; a < k.args.size(); a++) {
        auto pair = Napi::Array::New(env, 2);
        pair.Set(0u, k.names[a]);
        pair.Set(1u, arg_kind_name(k.args[a]));
        args.Set(static_cast<uint32_t>(a), pair);
      }
      signatures.Set(k.name, args);
    }
    exports.Set("signatures", signatures);
    exports.Set("napiVersion", Napi::Number::New(env, NAPI_VERSION));
    DefineAddon(exports, {
                             InstanceMethod<&RetrogradAddon::set_error_class>("setErrorClass"),
                             InstanceMethod<&RetrogradAddon::alloc>("alloc"),
                             InstanceMethod<&RetrogradAddon::release>("release"),
                             InstanceMethod<&RetrogradAddon::from_host>("fromHost"),
                             InstanceMethod<&RetrogradAddon::write>("write"),
                             InstanceMethod<&RetrogradAddon::read>("read"),
                             InstanceMethod<&RetrogradAddon::read_async>("readAsync"),
                             InstanceMethod<&RetrogradAddon::sync>("sync"),
                             InstanceMethod<&RetrogradAddon::sync_async>("syncAsync"),
                             InstanceMethod<&RetrogradAddon::info>("info"),
                             InstanceMethod<&RetrogradAddon::memory>("memory"),
                             InstanceMethod<&RetrogradAddon::set_matmul_precision>("setMatmulPrecision"),
                             InstanceMethod<&RetrogradAddon::all_reduce_start>("allReduceStart"),
                             InstanceMethod<&RetrogradAddon::all_reduce_wait>("allReduceWait"),
                             InstanceMethod<&RetrogradAddon::broadcast_start>("broadcastStart"),
                             InstanceMethod<&RetrogradAddon::all_reduce_times>("allReduceTimes"),
                             InstanceMethod<&RetrogradAddon::device_collectives_id>("deviceCollectivesId"),
                             InstanceMethod<&RetrogradAddon::device_collectives_init>("deviceCollectivesInit"),
                         });
    // run() is the hot path (a call per tensor operation): a raw callback, so that its arguments land in a stack array
    // (node-addon-api's CallbackInfo allocates one on the heap for more than six)
    napi_value run_fn;
    napi_create_function(env, "run", NAPI_AUTO_LENGTH, &RetrogradAddon::run_raw, this, &run_fn);
    exports.Set("run", Napi::Value(env, run_fn));
  }

  Napi::FunctionReference error_class;

 private:
  void set_error_class(const Napi::CallbackInfo& info) {
    if (info.Length() < 1 || !info[0].IsFunction()) {
      throw make_error(info.Env(), "INVALID_ARGUMENT", "setErrorClass: expected a constructor");
    }
    error_class = Napi::Persistent(info[0].As<Napi::Function>());
  }

  // Wraps a new storage in a NativeStorage object, or (external) in an external handle.
  Napi::Value wrap(Napi::Env env, StoragePtr s, bool external = false) {
    if (external) {
      auto* h = new HeldStorage;
      napi_value v;
      if (napi_create_external(env, h, finalize_external, nullptr, &v) != napi_ok) {
        delete h;
        throw make_error(env, "OUT_OF_MEMORY", "could not create a storage handle");
      }
      live_handles().insert(h);
      h->hold(env, std::move(s), queue_.retired());
      return Napi::Value(env, v);
    }
    Napi::Object obj = storage_ctor_.New({});
    NativeStorage::Unwrap(obj)->attach(env, std::move(s), queue_.retired());
    return obj;
  }

  // A third argument (after dtype and size for alloc, after the data for fromHost) that asks for an external handle.
  static bool wants_external(const Napi::CallbackInfo& info, size_t i) {
    return info.Length() > i && info[i].IsBoolean() && info[i].As<Napi::Boolean>().Value();
  }

  // release(storage): frees a storage (either kind of handle) now; queued kernels that use it still complete.
  void release(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    HeldStorage* h = held_by(env, info.Length() ? info[0] : env.Undefined());
    if (!h) throw make_error(env, "INVALID_ARGUMENT", "release: expected a native storage");
    h->release(env);
  }

  StoragePtr create(Napi::Env env, DType dtype, double size, const char* where, bool zero = true) {
    if (!(size >= 0 && size <= 4e9 && std::floor(size) == size))
      throw make_error(env, "INVALID_ARGUMENT", std::string(where) + ": size must be an integer in [0, 4e9], got " + std::to_string(size));
    if (!available_.ok()) throw make_error(env, code_name(available_.code), std::string(where) + ": " + available_.message);
    queue_.throttle();
    StoragePtr s = Storage::create(dtype, static_cast<size_t>(size), zero);
    if (!s) {
      std::string detail;
      if (!device::kHostStorage) {
        device::Memory m = device::memory();
        detail = " of device memory (in use: " + std::to_string(m.in_use) + " bytes; the allocator's cache was emptied and the allocation retried)";
      }
      throw make_error(env, "OUT_OF_MEMORY", std::string(where) + ": could not allocate " +
                                                 std::to_string(static_cast<int64_t>(size) * 4) + " bytes" + detail);
    }
    return s;
  }

  // 'float32' | 'int32', or the DType's number (0 float32, 1 int32: the backend's fast spelling, no string to compare)
  static DType parse_dtype(Napi::Env env, const Napi::Value& v, const char* where) {
    if (v.IsNumber()) {
      const double d = v.As<Napi::Number>().DoubleValue();
      if (d == 0) return DType::F32;
      if (d == 1) return DType::I32;
    } else if (v.IsString()) {
      std::string d = v.As<Napi::String>();
      if (d == "float32") return DType::F32;
      if (d == "int32") return DType::I32;
    }
    throw make_error(env, "INVALID_ARGUMENT", std::string(where) + ": dtype must be 'float32' or 'int32' (or 0 or 1)");
  }

  // alloc(dtype, size) -> NativeStorage, zero-filled.
  // alloc(dtype, size, zero = true, external = false) -> NativeStorage, or with external an external handle; zero
  // false leaves the contents to the kernel that writes them.
  Napi::Value alloc(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 2 || !info[1].IsNumber())
      throw make_error(env, "INVALID_ARGUMENT", "alloc: expected (dtype, size)");
    DType dtype = parse_dtype(env, info[0], "alloc");
    if (info.Length() > 2 && !info[2].IsUndefined() && !info[2].IsBoolean())
      throw make_error(env, "INVALID_ARGUMENT", "alloc: zero must be a boolean");
    const bool zero = info.Length() < 3 || info[2].IsUndefined() || info[2].As<Napi::Boolean>().Value();
    StoragePtr s = create(env, dtype, info[1].As<Napi::Number>().DoubleValue(), "alloc", zero);
    if (zero && !device::kHostStorage && s->bytes()) queue_.enqueue([s](ThreadPool&) { return device::zero(*s); }, true);
    return wrap(env, std::move(s), wants_external(info, 3));
  }

  static void typed_array_of(Napi::Env env, const Napi::Value& v, const char* where, DType* dtype, const void** data,
                             size_t* n) {
    if (!v.IsTypedArray()) throw make_error(env, "INVALID_ARGUMENT", std::string(where) + ": expected a Float32Array or Int32Array");
    auto ta = v.As<Napi::TypedArray>();
    if (ta.TypedArrayType() == napi_float32_array) *dtype = DType::F32;
    else if (ta.TypedArrayType() == napi_int32_array) *dtype = DType::I32;
    else throw make_error(env, "INVALID_ARGUMENT", std::string(where) + ": expected a Float32Array or Int32Array");
    *n = ta.ElementLength();
    *data = static_cast<const char*>(ta.ArrayBuffer().Data()) + ta.ByteOffset();
  }

  // fromHost(typedArray, external = false) -> a NativeStorage (or external handle) holding a copy (a new storage:
  // nothing queued can touch it yet).
  Napi::Value from_host(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    DType dtype;
    const void* data;
    size_t n;
    typed_array_of(env, info.Length() ? info[0] : env.Undefined(), "fromHost", &dtype, &data, &n);
    StoragePtr s = create(env, dtype, static_cast<double>(n), "fromHost");
    if (device::kHostStorage) {
      if (n) std::memcpy(s->raw(), data, n * 4);
    } else if (n) {
      upload(env, s, data, n * 4, "fromHost");
    }
    return wrap(env, std::move(s), wants_external(info, 1));
  }

  // Queues dst ← data through a host buffer that holds a copy taken now.
  void upload(Napi::Env env, const StoragePtr& dst, const void* data, size_t bytes, const char* where) {
    std::shared_ptr<device::HostBuffer> host = device::host_buffer(bytes);
    if (!host) throw make_error(env, "OUT_OF_MEMORY", std::string(where) + ": could not allocate " + std::to_string(bytes) + " bytes of host memory");
    std::memcpy(host->data(), data, bytes);
    queue_.enqueue([dst, host](ThreadPool&) { return device::upload(*dst, *host); }, true);
  }

  const StoragePtr& storage_arg(Napi::Env env, const Napi::Value& v, const std::string& where) {
    return storage_at(env, v, [&] { return where; });
  }
  // The storage v holds; `where()` builds the message's prefix, only when there is an error to report.
  // The reference stays valid while the wrapper lives: the caller's arguments keep it alive for the call.
  template <typename Where>
  const StoragePtr& storage_at(Napi::Env env, const Napi::Value& v, const Where& where) {
    const HeldStorage* h = held_by(env, v);
    if (!h) throw make_error(env, "INVALID_ARGUMENT", where() + ": expected a native storage");
    if (!h->storage) throw make_error(env, "INVALID_ARGUMENT", where() + ": the tensor has been disposed");
    return h->storage;
  }

  // write(storage, typedArray): queued copy of host data (taken now) into the storage.
  void write(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 2) throw make_error(env, "INVALID_ARGUMENT", "write: expected (storage, typedArray)");
    StoragePtr s = storage_arg(env, info[0], "write");
    DType dtype;
    const void* data;
    size_t n;
    typed_array_of(env, info[1], "write", &dtype, &data, &n);
    if (dtype != s->dtype() || n != s->size())
      throw make_error(env, "INVALID_ARGUMENT", "write: expected " + std::to_string(s->size()) + " elements of the storage's dtype, got " + std::to_string(n));
    if (n) upload(env, s, data, n * 4, "write");
  }

  void throw_if_failed(Napi::Env env, const Status& s) {
    if (!s.ok()) throw make_error(env, code_name(s.code), s.message);
  }

  // read(storage) -> a typed-array copy, after everything queued has run.
  Napi::Value read(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    StoragePtr s = storage_arg(env, info.Length() ? info[0] : env.Undefined(), "read");
    size_t n = s->size();
    auto ab = Napi::ArrayBuffer::New(env, n * 4);
    if (device::kHostStorage) {
      throw_if_failed(env, queue_.sync());
      queue_.retired()->sweep();
      if (n) std::memcpy(ab.Data(), s->raw(), n * 4);
    } else {
      std::shared_ptr<device::HostBuffer> host = device::host_buffer(n * 4);
      if (!host) throw make_error(env, "OUT_OF_MEMORY", "read: could not allocate " + std::to_string(n * 4) + " bytes of host memory");
      const uint64_t seq = queue_.enqueue([s, host](ThreadPool&) { return device::download(*host, *s); }, true);
      queue_.wait_for(seq);
      queue_.retired()->sweep();
      throw_if_failed(env, queue_.take_error(seq));
      throw_if_failed(env, device::finish(*host));
      if (n) std::memcpy(ab.Data(), host->data(), n * 4);
    }
    if (s->dtype() == DType::F32) return Napi::Float32Array::New(env, n, ab, 0);
    return Napi::Int32Array::New(env, n, ab, 0);
  }

  Napi::Value read_async(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    StoragePtr s = storage_arg(env, info.Length() ? info[0] : env.Undefined(), "readAsync");
    auto* w = new ReadWorker(env, queue_, std::move(s));
    Napi::Promise p = w->promise();
    w->Queue();
    return p;
  }

  void sync(const Napi::CallbackInfo& info) {
    if (!device::kHostStorage) queue_.enqueue([](ThreadPool&) { return device::fence(); });
    Status failed = queue_.sync();
    queue_.retired()->sweep();
    throw_if_failed(info.Env(), failed);
  }

  // setMatmulPrecision('highest' | 'tf32' | 'bfloat16'): applies to the products queued after it. 'bfloat16' is
  // rg.autocast's: operands rounded to bfloat16, sums in float32 (kernels that cannot stay float32).
  void set_matmul_precision(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::string p = info.Length() && info[0].IsString() ? info[0].As<Napi::String>().Utf8Value() : "";
    if (p != "highest" && p != "tf32" && p != "bfloat16")
      throw make_error(env, "INVALID_ARGUMENT", "setMatmulPrecision: expected 'highest', 'tf32' or 'bfloat16'");
    const bool tf32 = p == "tf32", bf16 = p == "bfloat16";
    queue_.enqueue([tf32, bf16](ThreadPool& pool) {
      pool.set_bf16_products(bf16);
      return device::set_matmul_tf32(tf32);
    }, true);
  }

  // The collective a handle from allReduceStart holds.
  static std::shared_ptr<Collective> collective_of(Napi::Env env, const Napi::Value& v, const char* where) {
    bool tagged = false;
    if (!v.IsExternal() || napi_check_object_type_tag(env, v, &kCollectiveHandleTag, &tagged) != napi_ok || !tagged)
      throw make_error(env, "INVALID_ARGUMENT", std::string(where) + ": expected a handle from allReduceStart");
    return *v.As<Napi::External<std::shared_ptr<Collective>>>().Data();
  }

  // deviceCollectivesId() → Uint8Array: a new id for the device's own communicator (NCCL), made on one rank.
  Napi::Value device_collectives_id(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::string id;
    Status s = device::device_collectives_id(&id);
    if (!s.ok()) throw make_error(env, code_name(s.code), s.message);
    auto out = Napi::Uint8Array::New(env, id.size());
    std::memcpy(out.Data(), id.data(), id.size());
    return out;
  }

  // deviceCollectivesInit(id: Uint8Array, rank, size): queues the joining of that communicator (it returns once every
  // rank has joined; a read after it reports a failure).
  void device_collectives_init(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 3 || !info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array || !info[1].IsNumber() || !info[2].IsNumber())
      throw make_error(env, "INVALID_ARGUMENT", "deviceCollectivesInit: expected (id: Uint8Array, rank, size)");
    auto a = info[0].As<Napi::Uint8Array>();
    std::string id(reinterpret_cast<const char*>(a.Data()), a.ElementLength());
    const int rank = info[1].As<Napi::Number>().Int32Value(), size = info[2].As<Napi::Number>().Int32Value();
    queue_.enqueue([id, rank, size](ThreadPool&) { return device::device_collectives_init(id, rank, size); }, true);
  }

  // allReduceStart(table, storages[], mean, shape) → handle: queues the gathering of the float storages and their
  // hand-over to the communication thread whose table (the MPI addon's collectives()) is given; `shape` is what the
  // ranks must agree on (the storages' total element count). table 'device': through the device's own communicator
  // (deviceCollectivesInit) instead, in place, with no shape check. See Collective.
  Napi::Value all_reduce_start(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const bool on_device = info.Length() > 0 && info[0].IsString() && info[0].As<Napi::String>().Utf8Value() == "device";
    const CollectivesTable* table = on_device ? nullptr : table_arg(env, info, "allReduceStart", "(the MPI addon's collectives table or 'device', storages, mean, shape)");
    std::shared_ptr<Collective> c = collective_arg(env, info, 1, 3, "allReduceStart");
    const int mean = info[2].ToBoolean().Value() ? 1 : 0;
    if (on_device) {
      c->on_device = true;
      // `after`: a check through MPI (no storages, the shape) that must have passed on every rank, else (it failed on
      // every rank, and its wait reported why) this all-reduce is skipped on every rank rather than left to hang
      std::shared_ptr<Collective> after = info.Length() > 4 && info[4].IsExternal() ? collective_of(env, info[4], "allReduceStart") : nullptr;
      queue_.enqueue([c, mean, after](ThreadPool&) -> Status {
        if (after && (!after->waited || !after->error.empty())) {
          c->skipped = true;
          return Status::Ok();
        }
        Status s = device::device_all_reduce_start(c->storages, mean != 0, &c->ticket);
        c->handed_over = s.ok();
        c->handed = std::chrono::steady_clock::now();
        return s;
      }, true);
      return handle_of(env, std::move(c));
    }
    return start_through_host(env, c, [table, mean](float* data, size_t n, const int64_t* shape, int ndim, void* ctx) {
      table->all_reduce(table->comm, data, n, shape, ndim, mean, collective_done, ctx);
    });
  }

  // broadcastStart(table, storages[], root, shape) → handle: as allReduceStart, rank root's values to every rank.
  Napi::Value broadcast_start(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const CollectivesTable* table = table_arg(env, info, "broadcastStart", "(the MPI addon's collectives table, storages, root, shape)");
    std::shared_ptr<Collective> c = collective_arg(env, info, 1, 3, "broadcastStart");
    if (!info[2].IsNumber()) throw make_error(env, "INVALID_ARGUMENT", "broadcastStart: root must be a number");
    const int root = info[2].As<Napi::Number>().Int32Value();
    c->what = "distributed.broadcast";
    return start_through_host(env, c, [table, root](float* data, size_t n, const int64_t* shape, int ndim, void* ctx) {
      table->broadcast(table->comm, data, n, shape, ndim, root, collective_done, ctx);
    });
  }

  // The MPI addon's table, checked (its tag, its version).
  static const CollectivesTable* table_arg(Napi::Env env, const Napi::CallbackInfo& info, const char* where, const char* expected) {
    bool tagged = false;
    if (info.Length() < 4 || !info[0].IsExternal() || napi_check_object_type_tag(env, info[0], &kCollectivesTag, &tagged) != napi_ok || !tagged)
      throw make_error(env, "INVALID_ARGUMENT", std::string(where) + ": expected " + expected);
    const auto* table = info[0].As<Napi::External<CollectivesTable>>().Data();
    if (table->version != kCollectivesVersion || !table->all_reduce || !table->broadcast)
      throw make_error(env, "INVALID_ARGUMENT", std::string(where) + ": the MPI addon's collectives table is of another version; rebuild both addons (npm rebuild retrograd)");
    return table;
  }

  // A collective of the float storages in info[list] and the shape in info[shape] that the ranks must agree on.
  std::shared_ptr<Collective> collective_arg(Napi::Env env, const Napi::CallbackInfo& info, size_t list_at, size_t shape_at, const char* where) {
    if (info.Length() <= shape_at || !info[list_at].IsArray() || !info[shape_at].IsArray())
      throw make_error(env, "INVALID_ARGUMENT", std::string(where) + ": expected an array of storages and a shape");
    auto list = info[list_at].As<Napi::Array>();
    auto c = std::make_shared<Collective>();
    size_t bytes = 0;
    for (uint32_t i = 0; i < list.Length(); i++) {
      StoragePtr st = storage_at(env, list.Get(i), [&] { return std::string(where) + ": storage " + std::to_string(i); });
      if (st->dtype() != DType::F32) throw make_error(env, "INVALID_ARGUMENT", std::string(where) + ": storage " + std::to_string(i) + " is not float32");
      bytes += st->bytes();
      c->storages.push_back(std::move(st));
    }
    c->floats = bytes / 4;
    auto dims = info[shape_at].As<Napi::Array>();
    int64_t product = 1;
    for (uint32_t i = 0; i < dims.Length(); i++) {
      c->shape.push_back(static_cast<int64_t>(dims.Get(i).ToNumber().DoubleValue()));
      product *= c->shape.back();
    }
    if (!c->storages.empty() && product != static_cast<int64_t>(c->floats))
      throw make_error(env, "INVALID_ARGUMENT", std::string(where) + ": the shape's element count differs from the storages'");
    return c;
  }

  // Queues the gathering of c's storages into one host buffer and `hand(data, n, shape, ndim, ctx)`, which gives it to
  // the communication thread (collectives.h: ctx for collective_done); allReduceWait's command copies the result back.
  template <typename Hand>
  Napi::Value start_through_host(Napi::Env env, const std::shared_ptr<Collective>& c, Hand hand) {
    queue_.enqueue([c, hand](ThreadPool&) -> Status {
      // taken here, in queue order, so that the same collective of the step before has given its buffer back
      c->staging = device::host_buffer(c->floats * 4);
      Status s = c->staging ? Status::Ok() : Status::OutOfMemory("distributed: could not allocate " + std::to_string(c->floats * 4) + " bytes of host memory");
      size_t at = 0;
      for (size_t i = 0; s.ok() && i < c->storages.size(); i++) {
        s = device::download(*c->staging, *c->storages[i], at);
        at += c->storages[i]->bytes();
      }
      if (s.ok()) s = device::fence();
      // handed over even when this rank could not read its tensors: as a shape of rank −1, which fails the collective
      // on every rank (its wait reports that), rather than leaving the others waiting in MPI for this one
      c->poisoned = !s.ok();
      c->handed_over = true;
      c->handed = std::chrono::steady_clock::now();
      if (c->poisoned) hand(nullptr, 0, nullptr, -1, new std::shared_ptr<Collective>(c));
      else hand(static_cast<float*>(c->staging->data()), c->floats, c->shape.data(), static_cast<int>(c->shape.size()), new std::shared_ptr<Collective>(c));
      return s;
    }, true);
    return handle_of(env, c);
  }

  // The JavaScript handle of a collective (an external that keeps it alive, tagged for allReduceWait).
  static Napi::Value handle_of(Napi::Env env, std::shared_ptr<Collective> c) {
    auto* held = new std::shared_ptr<Collective>(std::move(c));
    napi_value v;
    if (napi_create_external(env, held, [](node_api_basic_env, void* data, void*) { delete static_cast<std::shared_ptr<Collective>*>(data); }, nullptr, &v) != napi_ok) {
      delete held;
      throw make_error(env, "OUT_OF_MEMORY", "distributed: could not create a collective's handle");
    }
    napi_type_tag_object(env, v, &kCollectiveHandleTag);
    return Napi::Value(env, v);
  }

  // allReduceWait(handle): queues the wait for the collective's result and its copy back into the storages.
  void all_reduce_wait(const Napi::CallbackInfo& info) {
    std::shared_ptr<Collective> c = collective_of(info.Env(), info.Length() ? info[0] : info.Env().Undefined(), "allReduceWait");
    queue_.enqueue([c](ThreadPool&) -> Status {
      if (c->skipped) return Status::Ok();
      if (!c->handed_over) return Status{Code::Internal, c->what + ": the tensors could not be read for the collective"};
      if (c->on_device) {
        // the stream's later work waits for the device's all-reduce: nothing to copy, and the queue goes on at once
        Status s = device::device_all_reduce_wait(c->ticket);
        std::lock_guard<std::mutex> lock(c->mu);
        c->ticket.reset();
        c->storages.clear();
        c->finished = c->handed;  // (the device's own timing is not taken: the stats count its buckets only)
        c->waited = true;
        return s;
      }
      {
        const auto t0 = std::chrono::steady_clock::now();
        std::unique_lock<std::mutex> lock(c->mu);
        c->cv.wait(lock, [&] { return c->done; });
        c->waited_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
        c->waited = true;
      }
      Status s = c->error.empty() ? Status::Ok() : Status{c->invalid_argument ? Code::InvalidArgument : Code::Internal, c->what + ": " + c->error};
      size_t at = 0;
      for (size_t i = 0; s.ok() && !c->poisoned && i < c->storages.size(); i++) {
        s = device::upload(*c->storages[i], *c->staging, at);
        at += c->storages[i]->bytes();
      }
      // the host buffer goes back for the next collective of its size now, not when the handle is collected
      c->staging.reset();
      c->storages.clear();
      return s;
    }, true);
  }

  // allReduceTimes(handle) → { communicationMs, waitedMs } once the wait has run, else undefined.
  Napi::Value all_reduce_times(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::shared_ptr<Collective> c = collective_of(env, info.Length() ? info[0] : env.Undefined(), "allReduceTimes");
    std::lock_guard<std::mutex> lock(c->mu);
    if (!c->waited) return env.Undefined();
    auto o = Napi::Object::New(env);
    o.Set("communicationMs", std::chrono::duration<double, std::milli>(c->finished - c->handed).count());
    o.Set("waitedMs", c->waited_ms);
    return o;
  }

  Napi::Value sync_async(const Napi::CallbackInfo& info) {
    auto* w = new ReadWorker(info.Env(), queue_, nullptr);
    Napi::Promise p = w->promise();
    w->Queue();
    return p;
  }

  // run(kernelIndex, ...args): checks the arguments against the table entry, then queues the kernel. The arguments
  // go straight into a slot of the queue's ring (nothing is allocated); a refused argument gives the slot back.
  static napi_value run_raw(napi_env raw_env, napi_callback_info cb) {
    constexpr size_t kMaxCallArgs = 64;
    size_t argc = kMaxCallArgs;
    napi_value argv[kMaxCallArgs];
    void* self = nullptr;
    Napi::Env env(raw_env);
    try {
      if (napi_get_cb_info(raw_env, cb, &argc, argv, nullptr, &self) != napi_ok || !self)
        throw make_error(env, "INTERNAL", "run: could not read the call's arguments");
      if (argc > kMaxCallArgs) throw make_error(env, "INVALID_ARGUMENT", "run: more than " + std::to_string(kMaxCallArgs) + " arguments");
      static_cast<RetrogradAddon*>(self)->run(env, argc, argv);
    } catch (const Napi::Error& e) {
      e.ThrowAsJavaScriptException();
    } catch (const std::exception& e) {
      // building the RetrogradError calls JavaScript, which can throw in turn: then a plain error, never an escape
      try {
        make_error(env, "INTERNAL", std::string("run: ") + e.what()).ThrowAsJavaScriptException();
      } catch (...) {
        napi_throw_error(raw_env, "INTERNAL", "run: an internal error");
      }
    }
    return nullptr;
  }

  void run(Napi::Env env, size_t argc, const napi_value* argv) {
    const auto arg = [&](size_t i) { return Napi::Value(env, argv[i]); };
    if (argc < 1 || !arg(0).IsNumber())
      throw make_error(env, "INVALID_ARGUMENT", "run: expected a kernel index first");
    double ki = arg(0).As<Napi::Number>().DoubleValue();
    const auto& table = kernel_table();
    if (!(ki >= 0 && ki < static_cast<double>(table.size()) && std::floor(ki) == ki))
      throw make_error(env, "INVALID_ARGUMENT", "run: unknown kernel index " + std::to_string(ki));
    const KernelDef& k = table[static_cast<size_t>(ki)];
    const char* name = k.name;
    size_t expected = 0;
    for (Arg a : k.args) expected += a == Arg::Dims ? kMaxDims : 1;
    if (argc - 1 != expected)
      throw make_error(env, "INVALID_ARGUMENT", std::string(name) + ": expected " + std::to_string(expected) + " arguments, got " +
                                                    std::to_string(argc - 1));
    struct Slot {  // gives the slot back unless it was committed
      CommandQueue& q;
      bool committed = false;
      ~Slot() {
        if (!committed) q.abandon();
      }
    } slot{queue_};
    Command& c = queue_.begin();
    c.kernel = k.run;
    c.name = name;
    size_t at = 1;  // the next JavaScript argument (0: the kernel index)
    for (size_t a = 0; a < k.args.size(); a++) {
      const Arg kind = k.args[a];
      const size_t first = at - 1;  // this argument's position among the kernel's
      const auto where = [&] {
        return std::string(name) + ", argument " + std::to_string(kind == Arg::Dims ? at - 2 : first) + " (" + k.names[a] +
               (kind == Arg::Dims ? "[" + std::to_string(at - 2 - first) + "]" : "") + ")";
      };
      if (kind == Arg::F32 || kind == Arg::F32Opt || kind == Arg::I32 || kind == Arg::I32Opt || kind == Arg::Any32) {
        const Napi::Value v = arg(at++);
        const bool optional = kind == Arg::F32Opt || kind == Arg::I32Opt;
        if (optional && (v.IsNull() || v.IsUndefined())) {
          c.buf[c.nbuf++] = nullptr;
          continue;
        }
        const StoragePtr& s = storage_at(env, v, where);
        const bool is_f32 = s->dtype() == DType::F32;
        const bool want_i32 = kind == Arg::I32 || kind == Arg::I32Opt;
        const bool want_f32 = kind == Arg::F32 || kind == Arg::F32Opt;
        if ((want_i32 && is_f32) || (want_f32 && !is_f32))
          throw make_error(env, "INVALID_ARGUMENT", where() + ": expected a " + (want_i32 ? "int32" : "float32") + " storage, got " +
                                                        (is_f32 ? "float32" : "int32"));
        c.buf[c.nbuf++] = s.get();
        continue;
      }
      const int count = kind == Arg::Dims ? kMaxDims : 1;
      for (int i = 0; i < count; i++) {
        const Napi::Value v = arg(at++);
        if (kind == Arg::Bool) {
          if (!v.IsBoolean()) throw make_error(env, "INVALID_ARGUMENT", where() + ": expected a boolean");
          c.s[c.ns++] = v.As<Napi::Boolean>().Value() ? 1 : 0;
          continue;
        }
        if (!v.IsNumber()) throw make_error(env, "INVALID_ARGUMENT", where() + ": expected a number");
        const double d = v.As<Napi::Number>().DoubleValue();
        if ((kind == Arg::Size || kind == Arg::Dims) && !(d >= 0 && d < 2147483648.0 && std::floor(d) == d))
          throw make_error(env, "INVALID_ARGUMENT", where() + ": expected an integer size in [0, 2^31), got " + std::to_string(d));
        if (kind == Arg::Int && !(std::fabs(d) < 9007199254740992.0 && std::floor(d) == d))
          throw make_error(env, "INVALID_ARGUMENT", where() + ": expected an integer, got " + std::to_string(d));
        if (kind == Arg::Act && !(d == 0 || d == 1 || d == 2))
          throw make_error(env, "INVALID_ARGUMENT", where() + ": expected an activation code 0, 1 or 2, got " + std::to_string(d));
        c.s[c.ns++] = d;
      }
    }
    const Sizes need = k.need(c.s);
    for (int i = 0; i < c.nbuf; i++) {
      if (!c.buf[i]) continue;
      const double have = static_cast<double>(c.buf[i]->size());
      if (std::isnan(need[i]))
        throw make_error(env, "INVALID_ARGUMENT", std::string(name) + ": the sizes give no valid shape (a window larger than the padded input, a zero stride, or more dimensions than the kernel takes)");
      if (!(have >= need[i]))
        throw make_error(env, "INVALID_ARGUMENT", std::string(name) + ": buffer " + std::to_string(i) + " (" + buffer_name(k, i) + ") holds " +
                                                      std::to_string(c.buf[i]->size()) + " elements, needs " +
                                                      std::to_string(static_cast<int64_t>(need[i])));
    }
    queue_.commit();
    slot.committed = true;
  }

  // The name of a kernel's i-th buffer argument.
  static const std::string& buffer_name(const KernelDef& k, int i) {
    for (size_t a = 0; a < k.args.size(); a++) {
      const Arg kind = k.args[a];
      if (kind == Arg::F32 || kind == Arg::F32Opt || kind == Arg::I32 || kind == Arg::I32Opt || kind == Arg::Any32) {
        if (i-- == 0) return k.names[a];
      }
    }
    return k.names[0];
  }

  Napi::Value info(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto o = Napi::Object::New(env);
    o.Set("available", available_.ok());
    if (!available_.ok()) {
      o.Set("reason", available_.message);
      return o;
    }
    o.Set("threads", queue_.threads());
    if (!queue_.start_error().empty()) o.Set("threadWarning", queue_.start_error());
    for (const device::Fact& f : device::describe()) {
      if (f.kind == device::Fact::Number) {
        o.Set(f.key, f.number);
      } else if (f.kind == device::Fact::Text) {
        o.Set(f.key, f.text);
      } else {
        auto list = Napi::Array::New(env);
        uint32_t n = 0;
        for (size_t at = 0; at < f.text.size();) {
          size_t comma = f.text.find(',', at);
          if (comma == std::string::npos) comma = f.text.size();
          list.Set(n++, f.text.substr(at, comma - at));
          at = comma + 1;
        }
        o.Set(f.key, list);
      }
    }
    return o;
  }

  Napi::Value memory(const Napi::CallbackInfo& info) {
    queue_.retired()->sweep();  // storages the queue has run past are no longer live
    auto o = Napi::Object::New(info.Env());
    o.Set("tensors", static_cast<double>(memory_stats().storages.load()));
    o.Set("bytes", static_cast<double>(memory_stats().bytes.load()));
    device::Memory m = device::memory();
    o.Set("deviceBytesInUse", static_cast<double>(m.in_use));
    // the CPU backend's device is the host: its storage cache is what it keeps for reuse
    o.Set("deviceBytesCached", static_cast<double>(device::kHostStorage ? memory_stats().cached.load() : m.cached));
    return o;
  }

  Status available_;
  CommandQueue queue_;
  Napi::FunctionReference storage_ctor_;
};

Napi::Error make_error(Napi::Env env, const char* code, const std::string& message) {
  RetrogradAddon* addon = env.GetInstanceData<RetrogradAddon>();
  Napi::Object err;
  if (addon && !addon->error_class.IsEmpty()) {
    err = addon->error_class.New({Napi::String::New(env, message), Napi::String::New(env, code)});
  } else {
    err = Napi::Error::New(env, message).Value();
    err.Set("code", code);
  }
  return Napi::Error(env, err);
}

}  // namespace rg::addon

using rg::addon::RetrogradAddon;
NODE_API_ADDON(RetrogradAddon)
