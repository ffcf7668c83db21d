// The JS-visible Model: loads an SD 1.x model from a mapped file and its tensor table, and runs the
// three networks as Napi::AsyncWorker jobs (the event loop never computes). lib/sd.ts validates
// arguments first and is the public face; the checks here keep direct addon calls safe.
//
//   const m = new addon.Model();
//   const info = await m.load(path, tensors, { backend, weights, threads });
//   const out = await m.encodeText(ids, B, L, skip);                  // Float32Array [B, L, D]
//   const eps = await m.unet(x, B, C, h, w, t, ctx, L, D);            // Float32Array [B, 4, h, w]
//   const img = await m.vaeDecode(z, B, h, w);  const mom = await m.vaeEncode(img, B, H, W);
//   m.dispose();
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "addon/registry.h"
#include "models/model.h"

namespace sdnode {
namespace {

using Job = std::function<std::vector<float>(sd::SdModel&)>;

// Shared by the JS object and its load job, so a dispose() during load is seen when the load ends.
struct State {
  std::shared_ptr<sd::SdModel> model;
  bool loading = false, disposed = false;
};

// Runs one job on a worker thread and settles a promise. std::invalid_argument from the core (a
// shape or value the model cannot take) becomes a RangeError, anything else an Error.
class Worker : public Napi::AsyncWorker {
 public:
  Worker(Napi::Env env, std::shared_ptr<sd::SdModel> model, Job job)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), model_(std::move(model)),
        job_(std::move(job)) {}
  Napi::Promise promise() { return deferred_.Promise(); }

 protected:
  void Execute() override {
    try {
      out_ = job_(*model_);
    } catch (const std::invalid_argument& e) {
      range_ = true;
      msg_ = e.what();
    } catch (const std::bad_alloc&) {
      msg_ = "out of memory";
    } catch (const std::exception& e) {
      msg_ = e.what();
    }
    model_.reset();  // a disposed model is freed by the last job that holds it
  }
  void OnOK() override {
    Napi::Env env = Env();
    if (!msg_.empty()) {
      deferred_.Reject((range_ ? Napi::RangeError::New(env, msg_) : Napi::Error::New(env, msg_)).Value());
      return;
    }
    Napi::Float32Array a = Napi::Float32Array::New(env, out_.size());
    if (!out_.empty()) std::memcpy(a.Data(), out_.data(), out_.size() * sizeof(float));
    out_ = {};
    deferred_.Resolve(a);
  }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  std::shared_ptr<sd::SdModel> model_;
  Job job_;
  std::vector<float> out_;
  std::string msg_;
  bool range_ = false;
};

// Loading builds the model on a worker thread too (weight conversion can take seconds).
class LoadWorker : public Napi::AsyncWorker {
 public:
  LoadWorker(Napi::Env env, std::shared_ptr<State> state, std::string path, std::vector<sd::TensorEntry> table,
             sd::ModelOptions opt)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), state_(std::move(state)),
        path_(std::move(path)), table_(std::move(table)), opt_(std::move(opt)) {}
  Napi::Promise promise() { return deferred_.Promise(); }

 protected:
  void Execute() override {
    try {
      model_ = std::make_shared<sd::SdModel>(path_, table_, opt_);
    } catch (const std::invalid_argument& e) {
      range_ = true;
      msg_ = e.what();
    } catch (const std::bad_alloc&) {
      msg_ = "out of memory while loading '" + path_ + "'";
    } catch (const std::exception& e) {
      msg_ = e.what();
    }
    table_ = {};
  }
  void OnOK() override;
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  std::shared_ptr<State> state_;
  std::string path_;
  std::vector<sd::TensorEntry> table_;
  sd::ModelOptions opt_;
  std::shared_ptr<sd::SdModel> model_;
  std::string msg_;
  bool range_ = false;
};

Napi::Object describe(Napi::Env env, const sd::SdModel& m) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("backend", m.backend_name());
  o.Set("backendReason", m.backend_reason());
  o.Set("weightBytes", static_cast<double>(m.weight_bytes()));
  if (m.has_clip()) {
    Napi::Object c = Napi::Object::New(env);
    c.Set("hidden", static_cast<double>(m.clip().hidden));
    c.Set("layers", static_cast<double>(m.clip().layers));
    c.Set("vocab", static_cast<double>(m.clip().vocab));
    c.Set("positions", static_cast<double>(m.clip().positions));
    o.Set("clip", c);
  }
  if (m.has_unet()) {
    Napi::Object u = Napi::Object::New(env);
    u.Set("inChannels", static_cast<double>(m.unet().in_channels));
    u.Set("outChannels", static_cast<double>(m.unet().out_channels));
    u.Set("modelChannels", static_cast<double>(m.unet().model_channels));
    u.Set("contextDim", static_cast<double>(m.unet().context_dim));
    o.Set("unet", u);
  }
  if (m.has_vae_decoder() || m.has_vae_encoder()) {
    Napi::Object v = Napi::Object::New(env);
    v.Set("zChannels", static_cast<double>(m.vae().z_channels));
    v.Set("factor", static_cast<double>(m.vae().factor()));
    v.Set("decoder", m.has_vae_decoder());
    v.Set("encoder", m.has_vae_encoder());
    o.Set("vae", v);
  }
  return o;
}

void LoadWorker::OnOK() {
  Napi::Env env = Env();
  state_->loading = false;
  if (msg_.empty() && state_->disposed) msg_ = "Model.load: the model was disposed while loading";
  if (!msg_.empty()) {
    deferred_.Reject((range_ ? Napi::RangeError::New(env, msg_) : Napi::Error::New(env, msg_)).Value());
    return;
  }
  state_->model = model_;
  deferred_.Resolve(describe(env, *model_));
}

// ---- argument helpers ---------------------------------------------------------------------------

int64_t int_arg(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* name, int64_t lo = 1) {
  if (info.Length() <= i || !info[i].IsNumber()) throw TypeErr(std::string(fn) + ": " + name + " must be a number");
  const double v = info[i].As<Napi::Number>().DoubleValue();
  if (!(v >= static_cast<double>(lo)) || v != static_cast<double>(static_cast<int64_t>(v)) || v > 1e9)
    throw RangeErr(std::string(fn) + ": " + name + " must be an integer >= " + std::to_string(lo));
  return static_cast<int64_t>(v);
}

template <typename T, napi_typedarray_type K>
std::vector<T> array_arg(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* name, int64_t numel) {
  const char* tname = K == napi_int32_array ? "an Int32Array" : "a Float32Array";
  if (info.Length() <= i || !info[i].IsTypedArray() || info[i].As<Napi::TypedArray>().TypedArrayType() != K)
    throw TypeErr(std::string(fn) + ": " + name + " must be " + tname);
  Napi::TypedArrayOf<T> a = info[i].As<Napi::TypedArrayOf<T>>();
  if (static_cast<int64_t>(a.ElementLength()) != numel)
    throw RangeErr(std::string(fn) + ": " + name + " has " + std::to_string(a.ElementLength()) + " elements, expected " +
                   std::to_string(numel));
  return std::vector<T>(a.Data(), a.Data() + a.ElementLength());  // copied: the worker must not touch JS memory
}

std::string str_prop(const Napi::Object& o, const char* key, const std::string& ctx) {
  Napi::Value v = o.Get(key);
  if (!v.IsString()) throw TypeErr(ctx + "." + key + " must be a string");
  return v.As<Napi::String>();
}

double num_prop(const Napi::Object& o, const char* key, const std::string& ctx) {
  Napi::Value v = o.Get(key);
  if (!v.IsNumber()) throw TypeErr(ctx + "." + key + " must be a number");
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 0) || d != static_cast<double>(static_cast<int64_t>(d)) || d > 9007199254740991.0)
    throw RangeErr(ctx + "." + key + " must be a non-negative integer");
  return d;
}

std::vector<sd::TensorEntry> table_arg(const Napi::CallbackInfo& info, size_t i) {
  if (info.Length() <= i || !info[i].IsArray()) throw TypeErr("Model.load: tensors must be an array");
  Napi::Array arr = info[i].As<Napi::Array>();
  std::vector<sd::TensorEntry> table;
  table.reserve(arr.Length());
  for (uint32_t k = 0; k < arr.Length(); ++k) {
    const std::string ctx = "Model.load: tensors[" + std::to_string(k) + "]";
    Napi::Value v = arr.Get(k);
    if (!v.IsObject()) throw TypeErr(ctx + " must be an object");
    Napi::Object o = v.As<Napi::Object>();
    sd::TensorEntry e;
    e.name = str_prop(o, "name", ctx);
    e.dtype = str_prop(o, "dtype", ctx);
    e.offset = static_cast<uint64_t>(num_prop(o, "offset", ctx));
    e.byte_length = static_cast<uint64_t>(num_prop(o, "byteLength", ctx));
    Napi::Value sv = o.Get("shape");
    if (!sv.IsArray()) throw TypeErr(ctx + ".shape must be an array");
    Napi::Array sa = sv.As<Napi::Array>();
    for (uint32_t d = 0; d < sa.Length(); ++d) {
      Napi::Value dv = sa.Get(d);
      if (!dv.IsNumber()) throw TypeErr(ctx + ".shape must hold numbers");
      e.shape.push_back(static_cast<int64_t>(dv.As<Napi::Number>().DoubleValue()));
    }
    table.push_back(std::move(e));
  }
  return table;
}

// ---- the class ----------------------------------------------------------------------------------

class Model : public Napi::ObjectWrap<Model> {
 public:
  static void Init(Napi::Env env, Napi::Object exports) {
    Napi::Function cls = DefineClass(env, "Model", {
        InstanceMethod<&Model::Load>("load"),
        InstanceMethod<&Model::EncodeText>("encodeText"),
        InstanceMethod<&Model::Unet>("unet"),
        InstanceMethod<&Model::VaeDecode>("vaeDecode"),
        InstanceMethod<&Model::VaeEncode>("vaeEncode"),
        InstanceMethod<&Model::Release>("release"),
        InstanceMethod<&Model::Dispose>("dispose"),
    });
    exports.Set("Model", cls);
  }
  explicit Model(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Model>(info) {}

 private:
  // Every method converts C++ exceptions into JS ones (node-addon-api only forwards Napi::Error).
  template <typename F> Napi::Value guard(const Napi::CallbackInfo& info, F&& f) {
    try {
      return f();
    } catch (...) {
      throw_js_from_current(info.Env());
      return info.Env().Undefined();
    }
  }

  std::shared_ptr<sd::SdModel> live(const char* fn) {
    if (state_->disposed) throw Napi::Error::New(Env(), std::string("Model.") + fn + ": the model has been disposed");
    if (!state_->model) throw Napi::Error::New(Env(), std::string("Model.") + fn + ": the model is not loaded");
    return state_->model;
  }

  Napi::Value run(std::shared_ptr<sd::SdModel> m, Job job) {
    auto* w = new Worker(Env(), std::move(m), std::move(job));
    Napi::Promise p = w->promise();
    w->Queue();
    return p;
  }

  Napi::Value Load(const Napi::CallbackInfo& info) {
    return guard(info, [&]() -> Napi::Value {
      if (state_->disposed) throw Napi::Error::New(Env(), "Model.load: the model has been disposed");
      if (state_->model || state_->loading) throw Napi::Error::New(Env(), "Model.load: already loaded");
      if (info.Length() < 1 || !info[0].IsString()) throw TypeErr("Model.load: path must be a string");
      const std::string path = info[0].As<Napi::String>();
      std::vector<sd::TensorEntry> table = table_arg(info, 1);
      sd::ModelOptions opt;
      if (info.Length() > 2 && info[2].IsObject()) {
        Napi::Object o = info[2].As<Napi::Object>();
        if (o.Has("backend") && !o.Get("backend").IsUndefined()) opt.backend = str_prop(o, "backend", "Model.load: options");
        if (o.Has("threads") && !o.Get("threads").IsUndefined()) opt.threads = static_cast<int>(num_prop(o, "threads", "Model.load: options"));
        if (o.Has("weights") && !o.Get("weights").IsUndefined()) {
          const std::string wt = str_prop(o, "weights", "Model.load: options");
          if (!sd::dtype_from_name(wt.c_str(), &opt.dtype))
            throw RangeErr("Model.load: options.weights must be 'f32', 'f16', 'q8_0' or 'q4_0', got '" + wt + "'");
          opt.has_dtype = true;
        }
        if (o.Has("convActivations") && !o.Get("convActivations").IsUndefined()) {
          const std::string ca = str_prop(o, "convActivations", "Model.load: options");
          if (ca != "f32" && ca != "q8_0")
            throw RangeErr("Model.load: options.convActivations must be 'f32' or 'q8_0', got '" + ca + "'");
          opt.conv_q8_acts = ca == "q8_0";
        }
      }
      state_->loading = true;
      auto* w = new LoadWorker(Env(), state_, path, std::move(table), opt);
      Napi::Promise p = w->promise();
      w->Queue();
      return p;
    });
  }

  Napi::Value EncodeText(const Napi::CallbackInfo& info) {
    return guard(info, [&]() -> Napi::Value {
      auto m = live("encodeText");
      const int64_t B = int_arg(info, 1, "encodeText", "B"), L = int_arg(info, 2, "encodeText", "L");
      const int skip = static_cast<int>(int_arg(info, 3, "encodeText", "clipSkip"));
      auto ids = std::make_shared<std::vector<int32_t>>(array_arg<int32_t, napi_int32_array>(info, 0, "encodeText", "tokens", B * L));
      return run(m, [=](sd::SdModel& s) { return s.encode_text(ids->data(), B, L, skip); });
    });
  }

  Napi::Value Unet(const Napi::CallbackInfo& info) {
    return guard(info, [&]() -> Napi::Value {
      auto m = live("unet");
      const int64_t B = int_arg(info, 1, "unet", "B"), C = int_arg(info, 2, "unet", "C");
      const int64_t h = int_arg(info, 3, "unet", "h"), w = int_arg(info, 4, "unet", "w");
      const int64_t L = int_arg(info, 7, "unet", "L"), D = int_arg(info, 8, "unet", "D");
      auto x = std::make_shared<std::vector<float>>(array_arg<float, napi_float32_array>(info, 0, "unet", "x", B * C * h * w));
      auto t = std::make_shared<std::vector<float>>(array_arg<float, napi_float32_array>(info, 5, "unet", "t", B));
      auto c = std::make_shared<std::vector<float>>(array_arg<float, napi_float32_array>(info, 6, "unet", "context", B * L * D));
      return run(m, [=](sd::SdModel& s) { return s.run_unet(x->data(), B, C, h, w, t->data(), c->data(), L, D); });
    });
  }

  Napi::Value VaeDecode(const Napi::CallbackInfo& info) {
    return guard(info, [&]() -> Napi::Value {
      auto m = live("vaeDecode");
      const int64_t B = int_arg(info, 1, "vaeDecode", "B"), h = int_arg(info, 2, "vaeDecode", "h"), w = int_arg(info, 3, "vaeDecode", "w");
      const int64_t tile = info.Length() > 4 && info[4].IsNumber() ? int_arg(info, 4, "vaeDecode", "tile", 0) : 0;
      const int64_t overlap = info.Length() > 5 && info[5].IsNumber() ? int_arg(info, 5, "vaeDecode", "overlap", 0) : 0;
      auto z = std::make_shared<std::vector<float>>(array_arg<float, napi_float32_array>(info, 0, "vaeDecode", "z", B * m->vae().z_channels * h * w));
      return run(m, [=](sd::SdModel& s) { return s.vae_decode(z->data(), B, h, w, tile, overlap); });
    });
  }

  Napi::Value VaeEncode(const Napi::CallbackInfo& info) {
    return guard(info, [&]() -> Napi::Value {
      auto m = live("vaeEncode");
      const int64_t B = int_arg(info, 1, "vaeEncode", "B"), H = int_arg(info, 2, "vaeEncode", "H"), W = int_arg(info, 3, "vaeEncode", "W");
      const int64_t tile = info.Length() > 4 && info[4].IsNumber() ? int_arg(info, 4, "vaeEncode", "tile", 0) : 0;
      const int64_t overlap = info.Length() > 5 && info[5].IsNumber() ? int_arg(info, 5, "vaeEncode", "overlap", 0) : 0;
      auto img = std::make_shared<std::vector<float>>(array_arg<float, napi_float32_array>(info, 0, "vaeEncode", "image", B * m->vae().image_channels * H * W));
      return run(m, [=](sd::SdModel& s) { return s.vae_encode(img->data(), B, H, W, tile, overlap); });
    });
  }

  // release(part): runs after queued jobs (they hold the model's lock), so a forward never loses its
  // weights' pages or arena mid-call. Resolves to an empty Float32Array.
  Napi::Value Release(const Napi::CallbackInfo& info) {
    return guard(info, [&]() -> Napi::Value {
      auto m = live("release");
      if (info.Length() < 1 || !info[0].IsString()) throw sdnode::TypeErr("Model.release: part must be a string");
      const std::string part = info[0].As<Napi::String>().Utf8Value();
      if (part != "clip" && part != "unet" && part != "vae" && part != "activations")
        throw sdnode::RangeErr("Model.release: part must be 'clip', 'unet', 'vae' or 'activations', got '" + part + "'");
      return run(m, [=](sd::SdModel& s) {
        s.release(part);
        return std::vector<float>();
      });
    });
  }

  // Frees the weights once running jobs finish (they hold their own reference).
  Napi::Value Dispose(const Napi::CallbackInfo& info) {
    state_->disposed = true;
    state_->model.reset();
    return info.Env().Undefined();
  }

  std::shared_ptr<State> state_ = std::make_shared<State>();
};

void init(Napi::Env env, Napi::Object exports) { Model::Init(env, exports); }

}  // namespace
}  // namespace sdnode

SDNODE_INIT(sdnode::init);
