// CUDA graph replay of whole forwards (Backend::run_replayable), opt-in with SDNODE_CUDA_GRAPH=1.
//
// A UNet step issues hundreds of kernels; launched one by one from the host, their launch overhead
// shows at small sizes. The arena is a deterministic bump allocator (SdModel plans once per shape
// and rewinds after each call), so a step at one key sees the same pointers every call as long as
// the arena, the mark it starts at and the scratch buffer are the same. Such a step is captured
// once into a graph and replayed with one cudaGraphLaunch; its inputs (latents, context,
// timesteps) are uploaded into their arena tensors before the launch, its output read after.
//
// Per key: the first run is eager (it grows the scratch buffer to the step's needs, which syncs and
// cannot be captured), the second is captured and launched, later ones only launch. A change in
// what the graph's pointers depend on re-captures; planning and profiling (which syncs per op) run
// eagerly. A step that cannot be captured is run eagerly from then on, after one line on stderr.
//
// Capture-safety of the ops a UNet step reaches (audited): linear/conv (v0 and TC), attention,
// norms, elementwise and layout ops only launch kernels whose parameters are pointers and
// shape-derived constants (broadcast strides, timestep frequencies), the same every call; copy is
// a device-to-device cudaMemcpyAsync and the split group_norm a cudaMemsetAsync, both capturable;
// timestep_embedding reads t from device memory and computes wide frequency tables in the kernel.
// scratch() throws instead of growing during a capture. OpSync syncs only while profiling, when
// nothing is captured. Not replayable: get_rows (CLIP only) takes host ids, baked into the
// kernel's parameters (a replay would reuse the captured ids) or, beyond 960 ids, copied from host
// memory with a sync; keep it out of run_replayable.
#include <algorithm>
#include <cstdio>
#include <exception>
#include <string>

#include "cuda/cuda_backend.h"

namespace sd {

CudaBackend::Recorded* CudaBackend::find_recorded(const std::string& key) {
  for (Recorded& r : graphs_)
    if (r.key == key) return &r;
  return nullptr;
}

void CudaBackend::run_replayable(const std::string& key, const std::function<void()>& body) {
  bind();
  // A nested step inside a capture is simply part of the outer graph.
  if (!graphs_on_ || planning() || profiling() || capturing_ || uncapturable_.count(key)) return body();
  Recorded* r = find_recorded(key);
  if (!r) {
    body();  // first run: eager, sizes the scratch buffer
    if (graphs_.size() >= kMaxGraphs)
      graphs_.erase(std::min_element(graphs_.begin(), graphs_.end(),
                                     [](const Recorded& a, const Recorded& b) { return a.last_use < b.last_use; }));
    graphs_.emplace_back();
    graphs_.back().key = key;
    graphs_.back().last_use = ++graph_clock_;
    return;
  }
  r->last_use = ++graph_clock_;
  if (r->exec && r->arena == arena_.get() && r->entry == used_ && r->scratch == scratch_.get() &&
      r->scratch_bytes == scratch_bytes_) {
    SD_CUDA(cudaGraphLaunch(r->exec.get(), stream_));
    used_ = r->exit;  // the caller's arena state as after an eager run
    return;
  }
  if (!capture(*r, body)) body();
}

bool CudaBackend::capture(Recorded& r, const std::function<void()>& body) {
  const std::string key = r.key;  // r is erased on failure
  r.exec.reset();
  const size_t entry = used_;
  std::string why;
  cudaGraph_t raw = nullptr;
  cudaError_t ended = cudaSuccess;
  const cudaError_t began = cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal);
  if (began != cudaSuccess) {
    why = std::string("cudaStreamBeginCapture: ") + cudaGetErrorString(began);
  } else {
    capturing_ = true;
    try {
      body();
    } catch (const std::exception& e) {
      why = e.what();
    } catch (...) {
      why = "unknown exception";
    }
    capturing_ = false;
    ended = cudaStreamEndCapture(stream_, &raw);
  }
  const GraphPtr graph(raw);  // the captured (or partial) graph is freed on every path
  if (why.empty() && ended != cudaSuccess) why = std::string("cudaStreamEndCapture: ") + cudaGetErrorString(ended);
  GraphExecPtr exec;
  if (why.empty()) {
    cudaGraphExec_t e = nullptr;
    const cudaError_t made = cudaGraphInstantiate(&e, graph.get(), 0ULL);
    if (made == cudaSuccess)
      exec.reset(e);
    else
      why = std::string("cudaGraphInstantiate: ") + cudaGetErrorString(made);
  }
  if (!why.empty()) {
    cudaGetLastError();  // a failed capture leaves its error as the last one: not the next op's
    used_ = entry;
    uncapturable_.insert(key);
    graphs_.erase(std::remove_if(graphs_.begin(), graphs_.end(), [&](const Recorded& g) { return g.key == key; }),
                  graphs_.end());
    std::fprintf(stderr, "sdnode cuda: cannot record '%s' as a CUDA graph, running it op by op: %s\n", key.c_str(),
                 why.c_str());
    return false;
  }
  // Nothing of the step has run yet: capture only recorded it. (r is still valid: a step only
  // allocates from the arena, nothing in it touches graphs_.)
  Recorded* rec = &r;
  rec->exec = std::move(exec);
  rec->arena = arena_.get();
  rec->entry = entry;
  rec->exit = used_;
  rec->scratch = scratch_.get();
  rec->scratch_bytes = scratch_bytes_;
  SD_CUDA(cudaGraphLaunch(rec->exec.get(), stream_));
  return true;
}

}  // namespace sd
