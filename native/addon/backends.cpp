// backends(): what each compute backend says about itself, for `sdnode info --backends` and for
// users deciding between 'cpu' and 'cuda'. Probing CUDA only dlopens sdnode_cuda.so (if present).
#include "addon/registry.h"
#include "core/backend_loader.h"

namespace {

Napi::Value backends(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Array out = Napi::Array::New(env);
  Napi::Object cuda = Napi::Object::New(env);
  const std::string status = sd::cuda_status();
  const bool ok = status.rfind("available: ", 0) == 0;
  cuda.Set("backend", "cuda");
  cuda.Set("available", ok);
  cuda.Set(ok ? "device" : "reason", status.substr(status.find(": ") + 2));
  out.Set(0u, cuda);
  return out;
}

}  // namespace

SDNODE_EXPORT("backends", backends);
