// GEMM driver: picks the kernels for isa_active(), splits the output into tasks that depend only on
// the shape, and runs them on the pool. Per task (a block of rows x a block of columns):
//   for each K chunk: pack the W block (K chunk x NC columns, panels of nr) into the thread's
//   scratch; for each mr-row tile: pack (or quantize) A's tile, then run the micro-kernel over every
//   panel (full f32 tiles are read in place where the ISA has kernel_rows: same bits, no copy).
//   The W block lives in L2, the A tile in L1. K chunks after the first accumulate into C, in
//   a fixed order, so every C element sees the same operations whatever the thread count.
#include "cpu/gemm.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "core/cpu_features.h"
#include "core/fp16.h"
#include "core/quant.h"
#include "cpu/cpu_backend.h"
#include "cpu/gemm_kernels.h"

namespace sd {
namespace {

using gemmk::FloatKernels;
using gemmk::QuantKernels;

std::atomic<int> g_force_path{0};  // GemmQuantPath
// Up to this many rows gemm() takes the unpacked small-M path (dequantized weights for every dtype).
constexpr int64_t kGemvMaxRows = 4;

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
int64_t round_up(int64_t a, int64_t b) { return ceil_div(a, b) * b; }
size_t align64(size_t n) { return (n + 63) & ~size_t{63}; }

const FloatKernels* float_kernels_for(Isa isa) {
  const FloatKernels* k = nullptr;
#if defined(SDNODE_HAVE_AVX512)
  if (!k && isa == Isa::Avx512) k = gemmk::float_kernels_avx512();
#endif
#if defined(SDNODE_HAVE_AVX2)
  if (!k && (isa == Isa::Avx512 || isa == Isa::Avx2)) k = gemmk::float_kernels_avx2();
#endif
#if defined(SDNODE_HAVE_NEON)
  if (!k && (isa == Isa::Neon || isa == Isa::Dotprod)) k = gemmk::float_kernels_neon();
#endif
  return k ? k : gemmk::float_kernels_scalar();
}

// The first integer kernel set of this level that handles weight type t (null: none).
const QuantKernels* quant_kernels_for(Isa isa, DType t) {
  const QuantKernels* cands[3] = {nullptr, nullptr, nullptr};
#if defined(SDNODE_HAVE_AVX512)
  if (isa == Isa::Avx512) cands[0] = gemmk::quant_kernels_avx512();
#endif
#if defined(SDNODE_HAVE_AVX2)
  if (isa == Isa::Avx512 || isa == Isa::Avx2) {
    cands[1] = gemmk::quant_kernels_avx2();
    // SDNODE_GEMM_Q8_AVX2=0: q8_0 dequantizes at the AVX2 level as before the int16 kernel
    // (before/after measurements).
    static const bool q8_off = std::getenv("SDNODE_GEMM_Q8_AVX2") && std::string(std::getenv("SDNODE_GEMM_Q8_AVX2")) == "0";
    if (!q8_off) cands[2] = gemmk::quant_kernels_avx2_q8();
  }
#endif
#if defined(SDNODE_HAVE_DOTPROD)
  if (isa == Isa::Dotprod) cands[0] = gemmk::quant_kernels_dotprod();
#endif
  for (const QuantKernels* k : cands)
    if (k && (t == DType::Q8_0 ? k->q8_0 : k->q4_0)) return k;
  return nullptr;
}

// The integer path won every SD 1.5 shape measured (gemm_bench, 2 threads, 2026-11-26): AVX-512
// VNNI q8_0/q4_0 2-3x the dequantize-to-f32 path for M >= 154 (e.g. M=8192 K=1280 N=320: ~480 vs
// ~150-180 GFLOP/s), AVX2 q4_0 1.5-2x (139 vs 84 GFLOP/s). AVX2 q8_0 (int16 kernel, 2026-11-27, CPU
// clock, int/float in alternating runs, Sapphire Rapids forced to the AVX2 level): 1.0-1.25x on the
// nine M >= 512 UNet shapes (~1.1x weighted by the UNet's calls), M=154 K=768 N=320 a tie (0.9x
// before the thread-aware grid in run_quant). The kernel's edge is vpaddd issuing on a third port;
// a core with one vector-integer multiply pipe would gain nothing (not measured: no such CPU here;
// SDNODE_GEMM_Q8_AVX2=0 restores the f32 path). So where an integer kernel exists it is used for
// every M above the small-M path.
bool prefer_int(Isa, DType, int64_t, int64_t, int64_t) { return true; }

const QuantKernels* pick_quant(DType t, int64_t M, int64_t N, int64_t K) {
  if (!dtype_is_quantized(t)) return nullptr;
  const Isa isa = isa_active();
  const QuantKernels* qk = quant_kernels_for(isa, t);
  if (!qk) return nullptr;
  const int force = g_force_path.load(std::memory_order_relaxed);
  if (force == static_cast<int>(GemmQuantPath::Int)) return qk;
  if (force == static_cast<int>(GemmQuantPath::Float)) return nullptr;
  return prefer_int(isa, t, M, N, K) ? qk : nullptr;
}

// The task grid. The K chunks depend only on the shape (they fix every C element's bits); the
// task count may follow the thread count.
struct Grid {
  int64_t kc, nc, mc;     // K chunk (elements), columns and rows per task
  int64_t nnb, nmb;       // column blocks, row blocks
};

Grid make_grid(int64_t M, int64_t N, int64_t K, int mr, int nr, int64_t kc_target, int64_t kc_align,
               int threads = 0) {
  Grid g;
  const int64_t nkc = std::max<int64_t>(1, ceil_div(K, kc_target));
  g.kc = nkc == 1 ? K : round_up(ceil_div(K, nkc), kc_align);
  g.nnb = ceil_div(N, 512);
  // Blocks of <= 1024 rows keep a task's C block in L2 between K chunks; with one K chunk C is
  // written once and the rows need not be cut.
  g.nmb = threads > 0 && nkc == 1 ? 1 : ceil_div(M, 1024);
  // Enough tasks to balance, without tiles smaller than a few kernels. Splitting rows repacks W
  // once more (N x K), splitting columns reads A once more (M x K): split the longer side.
  const auto sizes = [&] {
    g.nc = round_up(ceil_div(N, g.nnb), nr);
    g.mc = round_up(ceil_div(M, g.nmb), mr);
    g.nnb = ceil_div(N, g.nc);
    g.nmb = ceil_div(M, g.mc);
  };
  sizes();
  // threads > 0: every task packs its W block (and converts it) again, so stop at the fewest
  // tasks that give each thread the same count (or >= 4 each). Which task computes an element
  // never changes its bits (the K chunks are fixed above), so the count may follow the threads.
  // 8192 x 320 x 320 on 2 threads: 2 tasks instead of 8 (W packing ~9 % -> ~2 % of the time).
  const auto enough = [&](int64_t t) {
    if (threads <= 0) return t >= 8;
    return t >= threads && (t % threads == 0 || t >= 4 * threads);
  };
  while (!enough(g.nnb * g.nmb)) {
    const int64_t tasks = g.nnb * g.nmb;
    const bool can_m = g.mc >= 8 * mr, can_n = g.nc >= 2 * nr;
    if (can_m && (!can_n || M >= N)) g.nmb *= 2;
    else if (can_n) g.nnb *= 2;
    else break;
    sizes();
    if (g.nnb * g.nmb <= tasks) break;
  }
  return g;
}

constexpr int kMaxTile = 32;  // largest mr / nr of any float kernel

// dst[k * w + j] = src[j][k] for j < w, k < kk. The kernels' tile widths are compile-time
// constants here so the inner loop unrolls (a measurable share of the f32 path's time).
template <int Wd>
void transpose_w(const float* const* src, int64_t kk, float* dst) {
  const float* s[Wd];
  for (int j = 0; j < Wd; ++j) s[j] = src[j];
  for (int64_t k = 0; k < kk; ++k)
    for (int j = 0; j < Wd; ++j) dst[k * Wd + j] = s[j][k];
}

void transpose(const float* const* src, int w, int64_t kk, float* dst) {
  switch (w) {
    case 4: return transpose_w<4>(src, kk, dst);
    case 6: return transpose_w<6>(src, kk, dst);
    case 8: return transpose_w<8>(src, kk, dst);
    case 12: return transpose_w<12>(src, kk, dst);
    case 14: return transpose_w<14>(src, kk, dst);
    case 16: return transpose_w<16>(src, kk, dst);
    case 32: return transpose_w<32>(src, kk, dst);
    default:
      for (int64_t k = 0; k < kk; ++k)
        for (int j = 0; j < w; ++j) dst[k * w + j] = src[j][k];
  }
}

void run_float(CpuBackend& be, const FloatKernels& fk, int64_t M, int64_t N, int64_t K,
               const float* A, int64_t lda, const uint8_t* W, DType wt, const float* bias, float* C,
               int64_t ldc) {
  const int mr = fk.mr, nr = fk.nr;
  // SDNODE_GEMM_GRID=old: the thread-independent grid of >= 8 tasks (before/after measurements).
  static const bool old_grid = std::getenv("SDNODE_GEMM_GRID") != nullptr;
  const Grid g = make_grid(M, N, K, mr, nr, 384, dtype_is_quantized(wt) ? 32 : 8,
                           old_grid ? 0 : be.threads());
  const size_t row_bytes = dtype_row_bytes(wt, K);
  const size_t panel_floats = static_cast<size_t>(g.kc) * nr;
  const size_t wbytes = align64(panel_floats * (g.nc / nr) * 4);
  const size_t abytes = align64(static_cast<size_t>(g.kc) * mr * 4);
  const size_t tbytes = align64(static_cast<size_t>(g.kc) * nr * 4);
  const size_t zbytes = align64(static_cast<size_t>(g.kc) * 4);
  // SDNODE_GEMM_PACK_A=1 keeps the packed-A path everywhere (for before/after measurements).
  static const bool force_pack = std::getenv("SDNODE_GEMM_PACK_A") != nullptr;
  const bool rows_kernel = fk.kernel_rows && !force_pack;
  be.pool().run(g.nnb * g.nmb, [&](int64_t task, int thread) {
    const int64_t n0 = (task % g.nnb) * g.nc, m0 = (task / g.nnb) * g.mc;
    const int64_t n1 = std::min(N, n0 + g.nc), m1 = std::min(M, m0 + g.mc);
    const int64_t npanels = ceil_div(n1 - n0, nr);
    uint8_t* s = be.scratch(thread, wbytes + abytes + tbytes + zbytes);
    float* wp = reinterpret_cast<float*>(s);
    float* at = reinterpret_cast<float*>(s + wbytes);
    float* tmp = reinterpret_cast<float*>(s + wbytes + abytes);
    float* zeros = reinterpret_cast<float*>(s + wbytes + abytes + tbytes);
    std::memset(zeros, 0, zbytes);
    for (int64_t k0 = 0; k0 < K; k0 += g.kc) {
      const int64_t kk = std::min(g.kc, K - k0);
      const size_t koff = dtype_row_bytes(wt, k0);
      // Transposes walk k outermost so the stores are contiguous (scattered stores cost more than
      // the strided loads from nr/mr row streams).
      for (int64_t p = 0; p < npanels; ++p) {
        float* panel = wp + p * kk * nr;
        const float* src[kMaxTile];
        for (int j = 0; j < nr; ++j) {
          const int64_t n = n0 + p * nr + j;
          if (n >= n1) {
            src[j] = zeros;
          } else if (wt == DType::F32) {
            src[j] = reinterpret_cast<const float*>(W + n * row_bytes + koff);
          } else {
            fk.to_f32(wt, W + n * row_bytes + koff, tmp + j * g.kc, kk);
            src[j] = tmp + j * g.kc;
          }
        }
        transpose(src, nr, kk, panel);
      }
      for (int64_t m = m0; m < m1; m += mr) {
        const int mv = static_cast<int>(std::min<int64_t>(mr, m1 - m));
        if (mv == mr && rows_kernel) {
          for (int64_t p = 0; p < npanels; ++p) {
            const int64_t n = n0 + p * nr;
            fk.kernel_rows(kk, A + m * lda + k0, lda, wp + p * kk * nr, C + m * ldc + n, ldc,
                           static_cast<int>(std::min<int64_t>(nr, n1 - n)), k0 > 0,
                           (k0 == 0 && bias) ? bias + n : nullptr);
          }
          continue;
        }
        const float* src[kMaxTile];
        for (int i = 0; i < mr; ++i) src[i] = i < mv ? A + (m + i) * lda + k0 : zeros;
        transpose(src, mr, kk, at);
        for (int64_t p = 0; p < npanels; ++p) {
          const int64_t n = n0 + p * nr;
          fk.kernel(kk, at, wp + p * kk * nr, C + m * ldc + n, ldc, mv,
                    static_cast<int>(std::min<int64_t>(nr, n1 - n)), k0 > 0,
                    (k0 == 0 && bias) ? bias + n : nullptr);
        }
      }
    }
  });
}

// Few rows (the time embedding's M = 2): packing W would cost more than the math, so each task
// converts its W rows once and dots them with every A row. Memory-bound on W.
void run_gemv(CpuBackend& be, const FloatKernels& fk, int64_t M, int64_t N, int64_t K, const float* A,
              int64_t lda, const uint8_t* W, DType wt, const float* bias, float* C, int64_t ldc) {
  const size_t row_bytes = dtype_row_bytes(wt, K);
  const int64_t chunk = std::max<int64_t>(8, ceil_div(N, 32));
  be.pool().run(ceil_div(N, chunk), [&](int64_t task, int thread) {
    float* tmp = reinterpret_cast<float*>(be.scratch(thread, static_cast<size_t>(K) * 4));
    const int64_t n1 = std::min(N, (task + 1) * chunk);
    for (int64_t n = task * chunk; n < n1; ++n) {
      const float* w = tmp;
      if (wt == DType::F32) w = reinterpret_cast<const float*>(W + n * row_bytes);
      else fk.to_f32(wt, W + n * row_bytes, tmp, K);
      for (int64_t m = 0; m < M; ++m) C[m * ldc + n] = fk.dot(A + m * lda, w, K) + (bias ? bias[n] : 0.0f);
    }
  });
}

void run_quant(CpuBackend& be, const QuantKernels& qk, int64_t M, int64_t N, int64_t K,
               const float* A, int64_t lda, const uint8_t* W, DType wt, const float* bias, float* C,
               int64_t ldc) {
  const int mr = qk.mr, nr = qk.nr;
  // Every task quantizes its rows of A again, so fewer, wider tasks (the thread-aware grid) also
  // save activation quantization. SDNODE_GEMM_GRID=old: the >= 8-task grid.
  static const bool old_grid = std::getenv("SDNODE_GEMM_GRID") != nullptr;
  const Grid g = make_grid(M, N, K, mr, nr, 1024, 32, old_grid ? 0 : be.threads());
  const int64_t kcb = g.kc / 32;
  const size_t row_bytes = dtype_row_bytes(wt, K);
  const size_t pbytes = align64(qk.panel_bytes(kcb));
  const size_t wbytes = pbytes * static_cast<size_t>(g.nc / nr);
  const size_t abytes = align64(qk.atile_bytes(kcb));
  be.pool().run(g.nnb * g.nmb, [&](int64_t task, int thread) {
    const int64_t n0 = (task % g.nnb) * g.nc, m0 = (task / g.nnb) * g.mc;
    const int64_t n1 = std::min(N, n0 + g.nc), m1 = std::min(M, m0 + g.mc);
    const int64_t npanels = ceil_div(n1 - n0, nr);
    uint8_t* s = be.scratch(thread, wbytes + abytes);
    uint8_t* at = s + wbytes;
    for (int64_t k0 = 0; k0 < K; k0 += g.kc) {
      const int64_t nkb = std::min(g.kc, K - k0) / 32;
      for (int64_t p = 0; p < npanels; ++p) {
        const int64_t n = n0 + p * nr;
        qk.pack(wt, W, row_bytes, n, std::min<int64_t>(nr, n1 - n), k0 / 32, nkb, s + p * pbytes);
      }
      for (int64_t m = m0; m < m1; m += mr) {
        const int mv = static_cast<int>(std::min<int64_t>(mr, m1 - m));
        qk.quant_a(mv, nkb, A + m * lda + k0, lda, at);
        for (int64_t p = 0; p < npanels; ++p) {
          const int64_t n = n0 + p * nr;
          qk.kernel(nkb, at, s + p * pbytes, C + m * ldc + n, ldc, mv,
                    static_cast<int>(std::min<int64_t>(nr, n1 - n)), k0 > 0,
                    (k0 == 0 && bias) ? bias + n : nullptr);
        }
      }
    }
  });
}

}  // namespace

void gemm_force_quant_path(GemmQuantPath p) { g_force_path.store(static_cast<int>(p)); }

bool gemm_uses_int_path(DType wtype, int64_t M, int64_t N, int64_t K) {
  return M > kGemvMaxRows && pick_quant(wtype, M, N, K) != nullptr;
}

void gemm(CpuBackend& be, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda,
          const void* W, DType wtype, const float* bias, float* C, int64_t ldc) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0) {
    for (int64_t m = 0; m < M; ++m)
      for (int64_t n = 0; n < N; ++n) C[m * ldc + n] = bias ? bias[n] : 0.0f;
    return;
  }
  const auto* w = static_cast<const uint8_t*>(W);
  if (M <= kGemvMaxRows) {
    run_gemv(be, *float_kernels_for(isa_active()), M, N, K, A, lda, w, wtype, bias, C, ldc);
  } else if (const QuantKernels* qk = pick_quant(wtype, M, N, K)) {
    run_quant(be, *qk, M, N, K, A, lda, w, wtype, bias, C, ldc);
  } else {
    run_float(be, *float_kernels_for(isa_active()), M, N, K, A, lda, w, wtype, bias, C, ldc);
  }
}

void gemm_reference(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const void* W,
                    DType wtype, const float* bias, float* C, int64_t ldc) {
  std::vector<float> wrow(static_cast<size_t>(K));
  const size_t row_bytes = dtype_row_bytes(wtype, K);
  for (int64_t n = 0; n < N; ++n) {
    to_f32_row(wtype, static_cast<const uint8_t*>(W) + n * row_bytes, wrow.data(), K);
    for (int64_t m = 0; m < M; ++m) {
      const float* a = A + m * lda;
      double acc = 0.0;
      for (int64_t k = 0; k < K; ++k) acc += static_cast<double>(a[k]) * wrow[k];
      C[m * ldc + n] = static_cast<float>(acc + (bias ? bias[n] : 0.0f));
    }
  }
}

void gemm_reference_qact(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda,
                         const void* W, DType wtype, const float* bias, float* C, int64_t ldc) {
  if (!dtype_is_quantized(wtype)) return gemm_reference(M, N, K, A, lda, W, wtype, bias, C, ldc);
  const int64_t nb = K / 32;
  const size_t row_bytes = dtype_row_bytes(wtype, K);
  std::vector<block_q8_0> qa(static_cast<size_t>(nb * M));
  for (int64_t m = 0; m < M; ++m) quantize_row_q8_0_act(A + m * lda, qa.data() + m * nb, K);
  std::vector<int8_t> qw(static_cast<size_t>(K));
  std::vector<float> dw(static_cast<size_t>(nb));
  for (int64_t n = 0; n < N; ++n) {
    const uint8_t* row = static_cast<const uint8_t*>(W) + n * row_bytes;
    for (int64_t b = 0; b < nb; ++b) {
      if (wtype == DType::Q8_0) {
        const auto* blk = reinterpret_cast<const block_q8_0*>(row) + b;
        dw[b] = fp16_to_fp32(blk->d);
        for (int j = 0; j < 32; ++j) qw[b * 32 + j] = blk->qs[j];
      } else {
        const auto* blk = reinterpret_cast<const block_q4_0*>(row) + b;
        dw[b] = fp16_to_fp32(blk->d);
        for (int j = 0; j < 16; ++j) {
          qw[b * 32 + j] = static_cast<int8_t>((blk->qs[j] & 0x0F) - 8);
          qw[b * 32 + j + 16] = static_cast<int8_t>((blk->qs[j] >> 4) - 8);
        }
      }
    }
    for (int64_t m = 0; m < M; ++m) {
      const block_q8_0* qm = qa.data() + m * nb;
      float sum = 0.0f;
      for (int64_t b = 0; b < nb; ++b) {
        int32_t isum = 0;
        for (int j = 0; j < 32; ++j) isum += int32_t{qm[b].qs[j]} * qw[b * 32 + j];
        sum += static_cast<float>(isum) * (dw[b] * fp16_to_fp32(qm[b].d));
      }
      C[m * ldc + n] = sum + (bias ? bias[n] : 0.0f);
    }
  }
}

}  // namespace sd
