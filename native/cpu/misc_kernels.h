// Row and tile kernels behind group_norm, layer_norm, softmax, the activations, add/mul and
// attention. One table per ISA level: the scalar table is the reference (plain loops, double
// accumulation); the AVX2 / AVX-512 / NEON tables come from one generic source
// (simd_rows.inc, simd_attention.inc, simd_attention_lanes.inc) compiled per ISA over a small
// vector wrapper (vec_*.h).
// Only plain types cross this header, so ISA translation units never instantiate shared inlines.
#pragma once
#include <cstddef>
#include <cstdint>

namespace sd {

enum MiscUnary : int { kUnarySilu = 0, kUnaryGelu = 1, kUnaryQuickGelu = 2 };
enum MiscBinary : int { kBinAdd = 0, kBinMul = 1 };

// Attention tiling, shared by every ISA so the work partition (and so the bits of each output)
// does not depend on the thread count. The row-major tile kernel (MiscKernels::attention_tile: the
// scalar reference, and heads wider than AttnLaneKernels::max_head, such as the VAE's 512) takes
// tasks of kAttnQChunk queries of one (batch, head): it packs
// that head's K (transposed) and V once, then runs query tiles of ~kAttnTq rows over key tiles of
// kAttnTk, so the packing cost is spread over many queries.
constexpr int64_t kAttnQChunk = 256;  // queries per task
constexpr int64_t kAttnTq = 64;       // queries per inner tile (rounded up to the register block)
constexpr int64_t kAttnTk = 128;      // longest key tile (kernels pick per head size)
constexpr int64_t kAttnRowPad = 8;    // room for register-block row padding (max MR)
// The query-lanes kernel (simd_attention_lanes.inc): blocks of at most kAttnLaneRows queries
// (along the vector lanes) over key tiles of at most kAttnLaneTk keys. When the packed K/V of all
// heads of a sample fit in kAttnLaneAllHeadsBytes (cross-attention's 77 keys), a task is
// kAttnLaneChunk queries of every head, so Q and y are read and written as whole rows; otherwise
// a task is kAttnQChunk queries of one head, whose K/V stay in L2 across the task.
constexpr int64_t kAttnLaneRows = 32;
constexpr int64_t kAttnLaneTk = 256;
constexpr int64_t kAttnLaneChunk = 64;
constexpr int64_t kAttnLaneAllHeadsBytes = 1 << 20;

struct AttnProblem {
  const float* q;  // [B, Nq, H*D]
  const float* k;  // [B, Nk, H*D]
  const float* v;  // [B, Nk, H*D]
  float* y;        // [B, Nq, H*D]
  int64_t B, Nq, Nk, H, D;
  float scale;  // 1/sqrt(D)
  bool causal;
  uint64_t call_id;  // unique per attention call: lets a thread reuse the K/V it packed
};

// Floats of per-thread scratch one attention task needs (any ISA): the packed K and V of one head
// (O(Nk * D)) plus the tile buffers. Out of line on purpose: an inline helper here would be
// compiled into ISA units too (see the ODR note in the team docs).
size_t attn_scratch_floats(int64_t Nk, int64_t D);
// The same for a query-lanes task over `heads` heads.
size_t attn_lanes_scratch_floats(int64_t Nk, int64_t D, int64_t heads);

struct MiscKernels {
  // One (sample, group) block: x/y hold cpg channels of hw contiguous values each.
  void (*group_norm)(float* y, const float* x, int64_t cpg, int64_t hw, const float* gamma,
                     const float* beta, float eps, bool silu);
  void (*layer_norm_row)(float* y, const float* x, int64_t n, const float* gamma, const float* beta,
                         float eps);
  void (*softmax_row)(float* y, const float* x, int64_t n);
  void (*unary_row)(float* y, const float* x, int64_t n, int op);
  // y[n] = x[:n] * gelu(x[n:2n])
  void (*geglu_row)(float* y, const float* x, int64_t n);
  void (*binary_row)(float* y, const float* a, const float* b, int64_t n, int op);
  void (*binary_scalar_row)(float* y, const float* a, float b, int64_t n, int op);
  // Queries [q0, q0 + min(kAttnQChunk, Nq - q0)) of (batch b, head h); scratch holds
  // attn_scratch_floats(Nk, D) floats, 64-byte aligned.
  void (*attention_tile)(const AttnProblem& p, int64_t b, int64_t h, int64_t q0, float* scratch);
};

// The table for the level sd::isa_active() reports now.
const MiscKernels& misc_kernels();

// The query-lanes attention kernel of one SIMD level.
struct AttnLaneKernels {
  int64_t max_head;  // wider heads take MiscKernels::attention_tile
  // Queries [q0, q0 + nq) of heads [h0, h1) of batch b; scratch holds
  // attn_lanes_scratch_floats(Nk, D, h1 - h0) floats, 64-byte aligned.
  void (*rows)(const AttnProblem& p, int64_t b, int64_t h0, int64_t h1, int64_t q0, int64_t nq,
               float* scratch);
};

// The query-lanes kernel for the level sd::isa_active() reports now; nullptr at the scalar level.
const AttnLaneKernels* attn_lane_kernels();

namespace scalar { extern const MiscKernels kMiscKernels; }
#if defined(SDNODE_HAVE_AVX2)
namespace avx2 { extern const MiscKernels kMiscKernels; extern const AttnLaneKernels kAttnLaneKernels; }
#endif
#if defined(SDNODE_HAVE_AVX512)
namespace avx512 { extern const MiscKernels kMiscKernels; extern const AttnLaneKernels kAttnLaneKernels; }
#endif
#if defined(SDNODE_HAVE_NEON)
namespace neon { extern const MiscKernels kMiscKernels; extern const AttnLaneKernels kAttnLaneKernels; }
#endif

}  // namespace sd
