// Creates a backend by name. "cuda" loads sdnode_cuda.so (next to the addon, or $SDNODE_CUDA_LIB)
// with dlopen, so machines without CUDA never load the CUDA runtime; "auto" takes CUDA when it
// loads and a device answers, else the CPU, and says why in *why.
#pragma once
#include <functional>
#include <memory>
#include <string>

#include "ops.h"

namespace sd {

struct BackendDeleter {
  void (*destroy)(Backend*) = nullptr;
  void operator()(Backend* b) const noexcept;
};
using BackendPtr = std::unique_ptr<Backend, BackendDeleter>;

// kind: "cpu" | "cuda" | "auto". Throws std::runtime_error when "cuda" was asked for and cannot be
// had (the message says why); *why (optional) receives the reason for the choice made.
BackendPtr make_backend(const std::string& kind, int threads, std::string* why = nullptr);

// Tests add backend kinds of their own (native/tests/half_act_backend.cpp: "cpu-f16act", the CPU
// with activations stored as f16) that make_backend then accepts. Not for the addon.
void register_test_backend(const std::string& kind, std::function<Backend*(int threads)> make);

// A one-line status per backend for `sdnode info --backends`.
std::string cuda_status();

}  // namespace sd
