// The tensor-core GEMM kernels, their stores and split-K (see gemm_tc_linear.cu for the design; the
// tile loaders are in gemm_tc_loaders.cuh). A header of its own so that a host-side emulation of the
// warp-level ops (tests/tc_emulation.cpp) can run it.
#pragma once
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <type_traits>

#include "core/dtype.h"
#include "cuda/act.cuh"
#include "cuda/gemm_tc_loaders.cuh"
#include "cuda/tc_common.cuh"

namespace sd {
namespace cuda {
namespace tc_gemm {

// Stores: operator() writes one result, pair() the results at (m, n) and (m, n + 1) (the latter
// only if n + 1 < N), which the kernel's fragments hold side by side. ACC: add to what c holds
// (Backend::linear_add: the residual read and written by the thread that computed the result).
template <class T = float, bool ACC = false>
struct DenseOut {
  T* c;
  int64_t ldc;
  __device__ void operator()(int64_t m, int64_t n, float v) const {
    T* p = c + m * ldc + n;
    *p = from_f32<T>(ACC ? v + to_f32(*p) : v);
  }
  __device__ void pair(int64_t m, int64_t n, float v0, float v1, int64_t N) const {
    T* p = c + m * ldc + n;
    // n is even: one 2-element access where rows keep pairs aligned.
    if (n + 1 < N && ldc % 2 == 0 && reinterpret_cast<uintptr_t>(c) % (2 * sizeof(T)) == 0) {
      if constexpr (sizeof(T) == 4) {
        float2 f;
        if (ACC) f = *reinterpret_cast<const float2*>(p), v0 += f.x, v1 += f.y;
        f.x = v0, f.y = v1;
        *reinterpret_cast<float2*>(p) = f;
      } else {
        if (ACC) {
          const float2 f = __half22float2(*reinterpret_cast<const __half2*>(p));
          v0 += f.x, v1 += f.y;
        }
        *reinterpret_cast<__half2*>(p) = __floats2half2_rn(v0, v1);
      }
    } else {
      (*this)(m, n, v0);
      if (n + 1 < N) (*this)(m, n + 1, v1);
    }
  }
};

// Output columns in groups of `part` to separate [M, part] tensors (tc_linear_n); part is even, so
// a pair never straddles two.
template <class T = float>
struct SplitCols {
  T* c[3];
  int64_t part;
  __device__ T* out(int64_t i) const { return i == 0 ? c[0] : i == 1 ? c[1] : c[2]; }  // as in Stack::row
  __device__ void operator()(int64_t m, int64_t n, float v) const {
    const int64_t i = n / part;
    out(i)[m * part + (n - i * part)] = from_f32<T>(v);
  }
  __device__ void pair(int64_t m, int64_t n, float v0, float v1, int64_t) const {
    const int64_t i = n / part;
    DenseOut<T>{out(i), part}.pair(m, n - i * part, v0, v1, part);
  }
};

// GEGLU's output y[M, F] = a * gelu(gate) (Backend::linear_geglu), for the GEMM over a [2F, K]
// weight whose rows Stack::geglu_f interleaves: WarpTile::store pairs each fragment of a's results
// with the fragment of their gates and stores through pair(); the split-K reduction (which sees
// the interleaved columns) through operator(). F % 8 == 0.
template <class T = float>
struct GegluOut {
  static constexpr bool kGeglu = true;
  T* y;
  int64_t F;
  __device__ void operator()(int64_t m, int64_t c, float v) const { y[m * F + c] = from_f32<T>(v); }
  __device__ void pair(int64_t m, int64_t c, float v0, float v1) const { DenseOut<T>{y, F}.pair(m, c, v0, v1, F); }
};
template <class S, class = void>
struct IsGeglu : std::false_type {};
template <class S>
struct IsGeglu<S, std::void_t<decltype(S::kGeglu)>> : std::integral_constant<bool, S::kGeglu> {};

// NCHW output; m < 2^31 (tc_conv2d_fits): 32-bit division, a fraction of a 64-bit one's cost.
// Added to each result, in this order, where given: chan [images, co] (broadcast over the plane: a
// ResBlock's timestep embedding) and res (an NCHW tensor of y's shape, which may be y: a skip).
template <class T = float>
struct ConvOut {
  T* y;
  int64_t co, plane;
  const T* res = nullptr;
  const T* chan = nullptr;
  __device__ void put(int64_t i, int64_t c, float v) const {
    if (chan) v += to_f32(chan[c]);
    if (res) v += to_f32(res[i]);
    y[i] = from_f32<T>(v);
  }
  __device__ void at(int64_t m, int64_t n, int64_t& i, int64_t& c) const {
    const int img = static_cast<int>(m) / static_cast<int>(plane);
    c = img * co + n;
    i = c * plane + (m - img * plane);
  }
  __device__ void operator()(int64_t m, int64_t n, float v) const {
    int64_t i, c;
    at(m, n, i, c);
    put(i, c, v);
  }
  __device__ void pair(int64_t m, int64_t n, float v0, float v1, int64_t N) const {
    int64_t i, c;
    at(m, n, i, c);
    put(i, c, v0);
    if (n + 1 < N) put(i + plane, c + 1, v1);
  }
};

// Calls f(wl) with the weight loader for weights of type t at `data` ([N, K] rows). Host code,
// shared by the launches and the emulation.
template <class F>
void with_weights(DType t, const void* data, int64_t N, int64_t K, F&& f) {
  const uint8_t* wp = static_cast<const uint8_t*>(data);
  switch (t) {
    case DType::F32: {
      const bool vec = K % 4 == 0 && reinterpret_cast<uintptr_t>(wp) % 16 == 0;
      return f(F32Rows{reinterpret_cast<const float*>(wp), N, K, K, vec});
    }
    case DType::F16: return f(F16Rows{reinterpret_cast<const __half*>(wp), N, K, F16Rows::vec_ok(wp, K)});
    case DType::Q8_0: return f(QRows<false>{wp, N, K, static_cast<int64_t>(dtype_row_bytes(t, K))});
    case DType::Q4_0: return f(QRows<true>{wp, N, K, static_cast<int64_t>(dtype_row_bytes(t, K))});
  }
}

// Calls f(wl, cb) with the loader for 3x3 conv weights laid out tap-major (conv_nhwc_kernel.cuh) and
// cb, an integral_constant: the channel block CB of their k order (TapOrder), which the A gather
// must follow. Host code, shared by the launches and the emulation.
template <class F>
void with_tap_weights(DType t, const void* data, int64_t N, int64_t K, F&& f) {
  const uint8_t* wp = static_cast<const uint8_t*>(data);
  switch (t) {
    case DType::F16:
      return f(F16Rows{reinterpret_cast<const __half*>(wp), N, K, F16Rows::vec_ok(wp, K)}, std::integral_constant<int, 0>{});
    case DType::Q8_0: return f(QTapRows<false>{wp, N, K}, std::integral_constant<int, 32>{});
    case DType::Q4_0: return f(QTapRows<true>{wp, N, K}, std::integral_constant<int, 32>{});
    case DType::F32: break;
  }
  throw std::logic_error("conv2d: f32 weights are never laid out tap-major");
}

// Split-K for a grid of `blocks` output tiles over K (`tiles` k-tiles) on `sms` SMs: splits (1:
// none) of tiles_per_split k-tiles each. The UNet's 1280-channel layers at 8x8 and 16x16 latents
// make 10-40 tiles with K up to 11520, leaving most SMs idle. The split count minimises a rough
// time in units of one unsplit tile's run: ceil(blocks * s / sms) / s for the waves, plus the
// partials' traffic (blocks * 128 * 128 * 8 bytes per split at ~4.8 TB/s, against ~3.5 TFLOP/s per
// SM: 2.9 * blocks / K per split) and the reduction's launch (~2 us: 214 / K). Each split keeps
// >= 4 k-tiles; at most 32 splits. Host code (the emulation tests it).
struct SplitK {
  int splits = 1, tiles_per_split = 0;
};
inline SplitK split_k(int64_t blocks, int64_t K, int sms) {
  SplitK sk;
  const int tiles = static_cast<int>((K + BK - 1) / BK);
  if (sms <= 0 || blocks <= 0 || blocks >= 2 * static_cast<int64_t>(sms)) return sk;
  const auto waves = [&](int s) { return static_cast<double>((blocks * s + sms - 1) / sms) / s; };
  const int most = tiles / 4 < 32 ? tiles / 4 : 32;
  double best = waves(1);
  int splits = 1;
  for (int s = 2; s <= most; ++s) {
    const double cost = waves(s) + (2.9 * static_cast<double>(blocks) * s + 214.0) / static_cast<double>(K);
    if (cost < best) best = cost, splits = s;
  }
  if (splits < 2) return sk;
  sk.tiles_per_split = (tiles + splits - 1) / splits;
  sk.splits = (tiles + sk.tiles_per_split - 1) / sk.tiles_per_split;  // no empty split
  return sk;
}

// The split plan a launch of an M x N x K GEMM makes (split_on: TcCtx::split_k) and the f32
// workspace it then asks for; callers that share one scratch buffer size it with these.
inline SplitK split_plan(int64_t M, int64_t N, int64_t K, int sms, bool split_on) {
  return split_on ? split_k(((M + BM - 1) / BM) * ((N + BN - 1) / BN), K, sms) : SplitK{};
}
inline size_t splitk_workspace_bytes(const SplitK& sk, int64_t M, int64_t N) {
  return sk.splits > 1 ? static_cast<size_t>(sk.splits) * M * N * sizeof(float) : 0;
}

// Split-K partial sums (blockIdx.z = split): f32 workspace [split][M][N], or [split][N][m] when
// n_major (a conv's output is NCHW: the reduction then writes whole planes in order).
struct SplitOut {
  float* ws;
  int64_t M, N;
  bool n_major;
  __device__ void operator()(int64_t m, int64_t n, float v) const {
    ws[static_cast<int64_t>(blockIdx.z) * M * N + (n_major ? n * M + m : m * N + n)] = v;
  }
  __device__ void pair(int64_t m, int64_t n, float v0, float v1, int64_t) const {
    float* p = ws + static_cast<int64_t>(blockIdx.z) * M * N + (n_major ? n * M + m : m * N + n);
    p[0] = v0;
    if (n + 1 < N) p[n_major ? M : 1] = v1;
  }
};

// Sums the splits' partials (+ bias) into the real output, in the workspace's order. I: the index
// type, int where the whole workspace fits (64-bit division costs several times a 32-bit one, and
// this kernel is bound by little else).
template <class Store, class I = int64_t>
__global__ void splitk_reduce_kernel(const float* ws, int splits, SplitOut layout, const float* bias, Store st) {
  cuda::pdl_entry();
  const I M = static_cast<I>(layout.M), N = static_cast<I>(layout.N), total = M * N;
  for (I i = blockIdx.x * static_cast<I>(blockDim.x) + threadIdx.x; i < total; i += static_cast<I>(gridDim.x) * blockDim.x) {
    const I q = layout.n_major ? i / M : i / N;
    const I m = layout.n_major ? i - q * M : q, n = layout.n_major ? q : i - q * N;
    float s = bias ? bias[n] : 0.f;
    for (int z = 0; z < splits; ++z) s += ws[z * total + i];
    st(m, n, s);
  }
}

// The same for GegluOut: partials in the interleaved column order (Stack::geglu_f), layout.N = 2F.
template <class Store, class I = int64_t>
__global__ void splitk_geglu_reduce_kernel(const float* ws, int splits, SplitOut layout, const float* bias, Store st) {
  cuda::pdl_entry();
  const I M = static_cast<I>(layout.M), N = static_cast<I>(layout.N), F = N / 2, plane = M * N, total = M * F;
  for (I i = blockIdx.x * static_cast<I>(blockDim.x) + threadIdx.x; i < total; i += static_cast<I>(gridDim.x) * blockDim.x) {
    const I m = i / F, c = i - m * F, p = m * N + (c >> 3) * 16 + (c & 7);
    float a = bias ? bias[c] : 0.f, g = bias ? bias[F + c] : 0.f;
    for (int z = 0; z < splits; ++z) a += ws[z * plane + p], g += ws[z * plane + p + 8];
    st(m, c, a * gelu_erf(g));
  }
}

// Two resident blocks per SM (so at most 128 registers a thread) where shared memory holds two
// (sm_80+: 2 x 41 KB): every instantiation fits without spilling on sm_90. Turing's 64 KB holds
// one, and there the cap would only cause spills.
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800
#define SD_TC_GEMM_MIN_BLOCKS 1
#else
#define SD_TC_GEMM_MIN_BLOCKS 2
#endif

// One warp's share of a k-tile: its 64x32 piece (rows wm*64, cols wn*32 of the block tile) from
// the tiles as, bs. ldmatrix row addresses (see tc_common.cuh): A rows lane % 16, k half lane / 16;
// W rows (lane % 8) + (lane / 16) * 8, k half (lane / 8) % 2.
struct WarpTile {
  int a_off, b_off, wm, wn, lane;
  float acc[4][4][4];
  __device__ explicit WarpTile(int tid) : wm((tid >> 5) & 1), wn(tid >> 6), lane(tid & 31) {
    a_off = (wm * 64 + (lane & 15)) * BKP + (lane >> 4) * 8;
    b_off = (wn * 32 + (lane & 7) + (lane >> 4) * 8) * BKP + ((lane >> 3) & 1) * 8;
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
      for (int j = 0; j < 4; ++j)
#pragma unroll
        for (int e = 0; e < 4; ++e) acc[i][j][e] = 0.f;
  }
  __device__ void mma(const __half* as, const __half* bs) {
#pragma unroll
    for (int kk = 0; kk < BK; kk += 16) {
      uint32_t af[4][4], bf[2][4];
#pragma unroll
      for (int mi = 0; mi < 4; ++mi) ldmatrix_x4(af[mi], as + a_off + mi * 16 * BKP + kk);
#pragma unroll
      for (int nj = 0; nj < 2; ++nj) ldmatrix_x4(bf[nj], bs + b_off + nj * 16 * BKP + kk);
#pragma unroll
      for (int mi = 0; mi < 4; ++mi)
#pragma unroll
        for (int ni = 0; ni < 4; ++ni)
          mma_16816(acc[mi][ni], af[mi], bf[ni >> 1][(ni & 1) * 2], bf[ni >> 1][(ni & 1) * 2 + 1]);
    }
  }
  // The bias once per column (the stores could alias it, so the compiler would reload it per store).
  template <class Store>
  __device__ void store(int64_t M, int64_t N, int64_t m0, int64_t n0, const float* bias, const Store& st) const {
    if constexpr (IsGeglu<Store>::value) store_geglu(M, m0, n0, bias, st);
    else store_pairs(M, N, m0, n0, bias, st);
  }
  template <class Store>
  __device__ void store_pairs(int64_t M, int64_t N, int64_t m0, int64_t n0, const float* bias, const Store& st) const {
    const int g = lane >> 2, t4 = lane & 3;
    float bv[4][2];
#pragma unroll
    for (int ni = 0; ni < 4; ++ni)
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        const int64_t n = n0 + wn * 32 + ni * 8 + t4 * 2 + e;
        bv[ni][e] = bias && n < N ? bias[n] : 0.f;
      }
#pragma unroll
    for (int mi = 0; mi < 4; ++mi)
#pragma unroll
      for (int ni = 0; ni < 4; ++ni)
#pragma unroll
        for (int r = 0; r < 2; ++r) {
          const int64_t m = m0 + wm * 64 + mi * 16 + g + r * 8;
          const int64_t n = n0 + wn * 32 + ni * 8 + t4 * 2;
          if (m < M && n < N) st.pair(m, n, acc[mi][ni][2 * r] + bv[ni][0], acc[mi][ni][2 * r + 1] + bv[ni][1], N);
        }
  }
  // GegluOut: fragments 2h hold a's results for the 8 outputs whose gates fragments 2h + 1 hold, at
  // the same lanes (Stack::geglu_f); the bias is in the weight's own [a | gate] order.
  template <class Store>
  __device__ void store_geglu(int64_t M, int64_t m0, int64_t n0, const float* bias, const Store& st) const {
    const int g = lane >> 2, t4 = lane & 3;
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int64_t c = (n0 + wn * 32 + h * 16) / 2 + t4 * 2;  // F % 8 == 0: c + 1 < F with c
      if (c >= st.F) continue;
      float ba[2] = {0.f, 0.f}, bg[2] = {0.f, 0.f};
      if (bias)
#pragma unroll
        for (int e = 0; e < 2; ++e) ba[e] = bias[c + e], bg[e] = bias[st.F + c + e];
#pragma unroll
      for (int mi = 0; mi < 4; ++mi)
#pragma unroll
        for (int r = 0; r < 2; ++r) {
          const int64_t m = m0 + wm * 64 + mi * 16 + g + r * 8;
          const float* a = acc[mi][2 * h] + 2 * r;
          const float* gt = acc[mi][2 * h + 1] + 2 * r;
          if (m < M) st.pair(m, c, (a[0] + ba[0]) * gelu_erf(gt[0] + bg[0]), (a[1] + ba[1]) * gelu_erf(gt[1] + bg[1]));
        }
    }
  }
};

// Block (x, y) computes the 128x128 output tile (x, y) over the k-tiles [z * tiles_per_split, +tiles_per_split).
// Double-buffered: the next tile's loads are issued before this tile's mma and staged after it.
template <class ALoad, class WLoad, class Store>
__global__ void __launch_bounds__(THREADS, SD_TC_GEMM_MIN_BLOCKS)
    tc_gemm_kernel(int64_t M, int64_t N, int64_t K, ALoad al, WLoad wl, const float* bias, Store st,
                   int tiles_per_split) {
  cuda::pdl_wait();
  __shared__ __align__(16) __half As[2][BM * BKP];
  __shared__ __align__(16) __half Bs[2][BN * BKP];
  const int tid = threadIdx.x;
  const int64_t m0 = static_cast<int64_t>(blockIdx.x) * BM, n0 = static_cast<int64_t>(blockIdx.y) * BN;
  static_assert(BM == 128 && BN == 128 && THREADS == 256 && BK == 32, "the loaders' thread mappings");
  al.init(m0, tid);
  wl.init(n0, tid);
  __syncthreads();  // loaders may fill per-block tables in init (ConvRows)
  const int tiles = static_cast<int>((K + BK - 1) / BK);
  const int t0 = static_cast<int>(blockIdx.z) * tiles_per_split, t1 = min(tiles, t0 + tiles_per_split);
  al.fetch(static_cast<int64_t>(t0) * BK, As[0]);
  wl.fetch(static_cast<int64_t>(t0) * BK, Bs[0]);
  al.stage(As[0]);
  wl.stage(Bs[0]);
  al.complete();
  wl.complete();
  __syncthreads();
  cuda::pdl_trigger();  // here, not at entry: there the two together cost the linear_n kernels a spill

  WarpTile wt(tid);
  // A warp whose 64x32 piece lies wholly past M or N has nothing to compute: on a 32-row layer
  // (the 1280-channel convs at 4x4 latents, batch 2) half the warps, on the last N tile of a
  // 320-wide layer half of them. Warp-uniform; it still loads and syncs with the block.
  const bool live = m0 + wt.wm * 64 < M && n0 + wt.wn * 32 < N;
  for (int t = t0; t < t1; ++t) {
    const int cur = (t - t0) & 1;
    const bool more = t + 1 < t1;
    if (more) {
      al.fetch(static_cast<int64_t>(t + 1) * BK, As[cur ^ 1]);
      wl.fetch(static_cast<int64_t>(t + 1) * BK, Bs[cur ^ 1]);
    }
    if (live) wt.mma(As[cur], Bs[cur]);
    if (more) {
      al.stage(As[cur ^ 1]);
      wl.stage(Bs[cur ^ 1]);
      al.complete();
      wl.complete();
    }
    __syncthreads();
  }
  wt.store(M, N, m0, n0, bias, st);
}

// The multi-stage pipeline for A loaders that copy with cp.async alone (kAsync: f16 rows, the NHWC
// conv gather): STAGES tiles in flight, so a tile's loads have STAGES - 1 tiles of mma to land in
// (with two, a load issued at the start of a tile had one tile's mma, about as long as an H100's
// global latency under load, and the barrier then waited for the slowest). W tiles: the same with
// an async W loader (f16 weights); a W loader that stages through registers (quantized weights:
// SDNODE_CUDA_QPIPE) keeps two buffers, fetched a tile ahead and staged after the mma, as in
// tc_gemm_kernel. Tiles in dynamic shared memory: tc_gemm_async_smem() bytes.
template <int STAGES, bool W_ASYNC = true>
constexpr size_t tc_gemm_async_smem() {
  return (static_cast<size_t>(STAGES) * BM + static_cast<size_t>(W_ASYNC ? STAGES : 2) * BN) * BKP * sizeof(__half);
}
template <int STAGES, class ALoad, class WLoad, class Store>
__global__ void __launch_bounds__(THREADS, SD_TC_GEMM_MIN_BLOCKS)
    tc_gemm_async_kernel(int64_t M, int64_t N, int64_t K, ALoad al, WLoad wl, const float* bias, Store st,
                         int tiles_per_split) {
  cuda::pdl_entry();
  static_assert(ALoad::kAsync, "A loaders that stage through registers take tc_gemm_kernel");
  constexpr bool WA = WLoad::kAsync;
  __half* As = reinterpret_cast<__half*>(dynamic_smem());  // [STAGES][BM * BKP], then W's
  __half* Bs = As + STAGES * BM * BKP;
  const int tid = threadIdx.x;
  const int64_t m0 = static_cast<int64_t>(blockIdx.x) * BM, n0 = static_cast<int64_t>(blockIdx.y) * BN;
  al.init(m0, tid);
  wl.init(n0, tid);
  const int tiles = static_cast<int>((K + BK - 1) / BK);
  const int t0 = static_cast<int>(blockIdx.z) * tiles_per_split, t1 = min(tiles, t0 + tiles_per_split);
  // One commit group per tile, empty past the end, so that wait<STAGES - 2> always means "the
  // oldest tile has landed".
#pragma unroll
  for (int s = 0; s < STAGES - 1; ++s) {
    if (t0 + s < t1) {
      al.fetch(static_cast<int64_t>(t0 + s) * BK, As + s * BM * BKP);
      if constexpr (WA) wl.fetch(static_cast<int64_t>(t0 + s) * BK, Bs + s * BN * BKP);
    }
    cp_async_commit();
  }
  if constexpr (!WA) {  // the first W tile, visible after the loop's first barrier
    if (t0 < t1) {
      wl.fetch(static_cast<int64_t>(t0) * BK, Bs);
      wl.stage(Bs);
    }
  }
  WarpTile wt(tid);
  const bool live = m0 + wt.wm * 64 < M && n0 + wt.wn * 32 < N;  // as in tc_gemm_kernel
  int cur = 0, nxt = STAGES - 1;  // the buffers of tiles t and t + STAGES - 1
  for (int t = t0; t < t1; ++t) {
    cp_async_wait<STAGES - 2>();
    // Tile t is in shared memory for every thread, and every warp is done with tile t - 1, whose
    // buffer the fetch below refills (W staged through registers: the stage after the mma).
    __syncthreads();
    if (t + STAGES - 1 < t1) {
      al.fetch(static_cast<int64_t>(t + STAGES - 1) * BK, As + nxt * BM * BKP);
      if constexpr (WA) wl.fetch(static_cast<int64_t>(t + STAGES - 1) * BK, Bs + nxt * BN * BKP);
    }
    cp_async_commit();
    const int wcur = WA ? cur : (t - t0) & 1;
    if constexpr (!WA) {
      if (t + 1 < t1) wl.fetch(static_cast<int64_t>(t + 1) * BK, nullptr);
    }
    if (live) wt.mma(As + cur * BM * BKP, Bs + wcur * BN * BKP);
    if constexpr (!WA) {
      if (t + 1 < t1) wl.stage(Bs + (wcur ^ 1) * BN * BKP);
    }
    cur = cur + 1 == STAGES ? 0 : cur + 1;
    nxt = nxt + 1 == STAGES ? 0 : nxt + 1;
  }
  cp_async_wait<0>();  // only empty groups remain; a thread must not end with copies pending
  wt.store(M, N, m0, n0, bias, st);
}

}  // namespace tc_gemm
}  // namespace cuda
}  // namespace sd
