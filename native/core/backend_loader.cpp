#include "core/backend_loader.h"

#include <dlfcn.h>

#include <cstdlib>
#include <map>
#include <stdexcept>
#include <string>

namespace sd {
namespace {

using ProbeFn = int (*)(int, char*, size_t);
using CreateFn = int (*)(int, Backend**, char*, size_t);
using DestroyFn = void (*)(Backend*);

struct CudaLib {
  void* handle = nullptr;
  ProbeFn probe = nullptr;
  CreateFn create = nullptr;
  DestroyFn destroy = nullptr;
  std::string error;
};

std::string self_dir() {
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&self_dir), &info) && info.dli_fname) {
    std::string p = info.dli_fname;
    const size_t slash = p.find_last_of('/');
    if (slash != std::string::npos) return p.substr(0, slash);
  }
  return ".";
}

// Loaded once per process and kept: unloading the CUDA runtime at exit is not worth the risk.
const CudaLib& cuda_lib() {
  static const CudaLib lib = [] {
    CudaLib l;
    const char* env = std::getenv("SDNODE_CUDA_LIB");
    const std::string path = env && *env ? env : self_dir() + "/sdnode_cuda.so";
    l.handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!l.handle) {
      const char* e = dlerror();
      l.error = "CUDA backend library not loadable (" + path + "): " + (e ? e : "unknown error");
      return l;
    }
    l.probe = reinterpret_cast<ProbeFn>(dlsym(l.handle, "sdnode_cuda_probe"));
    l.create = reinterpret_cast<CreateFn>(dlsym(l.handle, "sdnode_cuda_create"));
    l.destroy = reinterpret_cast<DestroyFn>(dlsym(l.handle, "sdnode_cuda_destroy"));
    if (!l.probe || !l.create || !l.destroy) l.error = "CUDA backend library " + path + " lacks its entry points";
    return l;
  }();
  return lib;
}

}  // namespace

void BackendDeleter::operator()(Backend* b) const noexcept {
  if (destroy) destroy(b);
  else delete b;
}

std::string cuda_status() {
  const CudaLib& l = cuda_lib();
  if (!l.error.empty()) return "unavailable: " + l.error;
  char info[256] = {0};
  if (l.probe(0, info, sizeof info) != 0) return std::string("unavailable: ") + info;
  return std::string("available: ") + info;
}

namespace {
std::map<std::string, std::function<Backend*(int)>>& test_backends() {
  static std::map<std::string, std::function<Backend*(int)>> m;
  return m;
}
}  // namespace

void register_test_backend(const std::string& kind, std::function<Backend*(int threads)> make) {
  test_backends()[kind] = std::move(make);
}

BackendPtr make_backend(const std::string& kind, int threads, std::string* why) {
  const auto t = test_backends().find(kind);
  if (t != test_backends().end()) {
    if (why) *why = kind + ": test backend";
    return BackendPtr(t->second(threads), BackendDeleter{});
  }
  if (kind != "cpu" && kind != "cuda" && kind != "auto")
    throw std::invalid_argument("backend must be 'auto', 'cpu' or 'cuda', got '" + kind + "'");
  if (kind == "cuda" || kind == "auto") {
    const CudaLib& l = cuda_lib();
    std::string reason = l.error;
    if (reason.empty()) {
      Backend* b = nullptr;
      char err[512] = {0};
      if (l.create(0, &b, err, sizeof err) == 0 && b) {
        char info[256] = {0};
        l.probe(0, info, sizeof info);
        if (why) *why = std::string("cuda: ") + info;
        return BackendPtr(b, BackendDeleter{l.destroy});
      }
      reason = err;
    }
    if (kind == "cuda") throw std::runtime_error("backend 'cuda' is not available: " + reason);
    if (why) *why = "cpu: CUDA not used (" + reason + ")";
  } else if (why) {
    *why = "cpu: requested";
  }
  return BackendPtr(make_cpu_backend(threads).release(), BackendDeleter{});
}

}  // namespace sd
