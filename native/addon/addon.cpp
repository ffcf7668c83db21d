// Module entry: collects what every addon/*.cpp registered.
#include <new>
#include <utility>
#include <vector>

#include "addon/registry.h"
#include "core/cpu_features.h"
#include "core/threadpool.h"

namespace sdnode {
namespace {

struct Entry {
  const char* name;
  Napi::Value (*fn)(const Napi::CallbackInfo&);
  InitFn init;
};

std::vector<Entry>& entries() {
  static std::vector<Entry> e;
  return e;
}

Napi::Value call_entry(const Napi::CallbackInfo& info) {
  auto* fn = reinterpret_cast<Napi::Value (*)(const Napi::CallbackInfo&)>(info.Data());
  return guarded(info, fn);
}

Napi::Value cpu_info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const sd::CpuFeatures& f = sd::cpu_features();
  Napi::Object o = Napi::Object::New(env);
  Napi::Object feats = Napi::Object::New(env);
  feats.Set("avx2", f.avx2); feats.Set("fma", f.fma); feats.Set("f16c", f.f16c);
  feats.Set("avx512f", f.avx512f); feats.Set("avx512bw", f.avx512bw); feats.Set("avx512vl", f.avx512vl);
  feats.Set("avx512dq", f.avx512dq); feats.Set("avx512vnni", f.avx512vnni);
  feats.Set("neon", f.neon); feats.Set("dotprod", f.dotprod); feats.Set("fp16", f.fp16);
  o.Set("features", feats);
  o.Set("physicalCores", f.physical_cores);
  o.Set("logicalCores", f.logical_cores);
  o.Set("isaBest", sd::isa_name(sd::isa_best()));
  o.Set("isaActive", sd::isa_name(sd::isa_active()));
  o.Set("defaultThreads", sd::default_thread_count());
  return o;
}

Napi::Value set_isa(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsString()) throw TypeErr("setIsa: level must be a string");
  sd::Isa level;
  const std::string name = info[0].As<Napi::String>();
  if (!sd::isa_from_name(name, &level)) throw RangeErr("setIsa: unknown level '" + name + "'");
  return Napi::Boolean::New(info.Env(), sd::isa_force(level));
}

}  // namespace

Registrar::Registrar(const char* name, Napi::Value (*fn)(const Napi::CallbackInfo&)) {
  entries().push_back({name, fn, nullptr});
}
Registrar::Registrar(InitFn init) { entries().push_back({nullptr, nullptr, init}); }

void throw_js_from_current(Napi::Env env) {
  try {
    throw;
  } catch (const Napi::Error& e) {
    e.ThrowAsJavaScriptException();
  } catch (const TypeErr& e) {
    Napi::TypeError::New(env, e.what()).ThrowAsJavaScriptException();
  } catch (const RangeErr& e) {
    Napi::RangeError::New(env, e.what()).ThrowAsJavaScriptException();
  } catch (const std::invalid_argument& e) {
    Napi::RangeError::New(env, e.what()).ThrowAsJavaScriptException();
  } catch (const std::bad_alloc&) {
    Napi::Error::New(env, "out of memory").ThrowAsJavaScriptException();
  } catch (const std::exception& e) {
    Napi::Error::New(env, e.what()).ThrowAsJavaScriptException();
  } catch (...) {
    Napi::Error::New(env, "unknown native error").ThrowAsJavaScriptException();
  }
}

Napi::Value guarded(const Napi::CallbackInfo& info, Napi::Value (*fn)(const Napi::CallbackInfo&)) {
  try {
    return fn(info);
  } catch (...) {
    throw_js_from_current(info.Env());
    return info.Env().Undefined();
  }
}

SDNODE_EXPORT("cpuInfo", cpu_info);
SDNODE_EXPORT("setIsa", set_isa);

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  for (const Entry& e : entries()) {
    if (e.init) {
      e.init(env, exports);
    } else {
      exports.Set(e.name, Napi::Function::New(env, call_entry, e.name,
                                              reinterpret_cast<void*>(e.fn)));
    }
  }
  exports.Set("abiVersion", Napi::Number::New(env, 1));
  return exports;
}

}  // namespace sdnode

static Napi::Object InitSdnode(Napi::Env env, Napi::Object exports) {
  return sdnode::Init(env, exports);
}

NODE_API_MODULE(sdnode, InitSdnode)
