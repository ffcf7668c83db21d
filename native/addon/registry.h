// Each addon/*.cpp registers its exports with a static SDNODE_EXPORT(...) so files stay independent.
// Every function is wrapped so no C++ exception escapes into N-API: std::invalid_argument becomes a
// TypeError-or-RangeError chosen by the message prefix, everything else an Error.
#pragma once
#include <napi.h>

#include <functional>
#include <stdexcept>
#include <string>

namespace sdnode {

using ExportFn = std::function<Napi::Value(const Napi::CallbackInfo&)>;
using InitFn = void (*)(Napi::Env, Napi::Object);

struct Registrar {
  Registrar(const char* name, Napi::Value (*fn)(const Napi::CallbackInfo&));
  // For classes or anything else that needs the exports object.
  explicit Registrar(InitFn init);
};

// Errors whose JS type the addon controls. Throw these from binding code.
struct TypeErr : std::runtime_error { using std::runtime_error::runtime_error; };
struct RangeErr : std::runtime_error { using std::runtime_error::runtime_error; };

// Converts the current C++ exception into a pending JS exception. Call inside catch (...).
void throw_js_from_current(Napi::Env env);

// Wraps fn so exceptions become JS errors.
Napi::Value guarded(const Napi::CallbackInfo& info, Napi::Value (*fn)(const Napi::CallbackInfo&));

}  // namespace sdnode

#define SDNODE_CAT2(a, b) a##b
#define SDNODE_CAT(a, b) SDNODE_CAT2(a, b)
#define SDNODE_EXPORT(name, fn) static ::sdnode::Registrar SDNODE_CAT(sdnode_reg_, __LINE__)(name, fn)
#define SDNODE_INIT(fn) static ::sdnode::Registrar SDNODE_CAT(sdnode_init_, __LINE__)(fn)
