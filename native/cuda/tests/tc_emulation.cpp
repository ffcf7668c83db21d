// Runs the tensor-core kernels (gemm_tc_kernel.cuh, attention_tc_kernel.cuh) on the host, with the
// warp-level ops emulated from the PTX ISA's fragment layouts (tests/emu/cuda/tc_common.cuh), and
// compares them with a double-precision reference on the same fp16-rounded inputs. It checks the
// kernels' tiling, fragment and masking arithmetic on a machine without a GPU; it cannot check the
// hardware's own behaviour (scripts/gpu-check.sh does). Not part of the build:
//   bash scripts/cuda-emu-check.sh
#include <atomic>
#include <cmath>
#include <cstdio>
#include <functional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "emu/cuda/tc_common.cuh"
inline int min(int a, int b) { return a < b ? a : b; }
#include "cuda/attention_tc_kernel.cuh"
#include "cuda/attention_wide_kernel.cuh"
#include "cuda/conv_nhwc_kernel.cuh"
#include "cuda/gemm_tc_kernel.cuh"
#include "cuda/norm_split_kernel.cuh"

namespace {

int g_fail = 0, g_pass = 0;
std::atomic<bool> g_leftover{false};  // a thread ended with cp.async copies never waited for

void run_grid(unsigned gx, unsigned gy, int threads, const std::function<void()>& body, unsigned gz = 1) {
  emu::block_barrier().n = threads;
  for (int w = 0; w < threads / 32; ++w) emu::warps()[w].bar.n = 32;
  for (unsigned bz = 0; bz < gz; ++bz)
    for (unsigned by = 0; by < gy; ++by)
      for (unsigned bx = 0; bx < gx; ++bx) {
        std::vector<std::thread> ts;
        for (int t = 0; t < threads; ++t)
          ts.emplace_back([&, t] {
            threadIdx = make_uint3(t, 0, 0);
            blockIdx = make_uint3(bx, by, bz);
            blockDim = make_uint3(threads, 1, 1);
            gridDim = make_uint3(gx, gy, gz);
            body();
            if (sd::cuda::cp_async_leftover()) g_leftover = true;
          });
        for (auto& t : ts) t.join();
      }
}

float h(float x) { return __half2float(__float2half_rn(x)); }

// f16 activations (the "half" kernel set): inputs stored as __half, outputs read back as float.
std::vector<__half> to_half(const std::vector<float>& v) {
  std::vector<__half> o(v.size());
  for (size_t i = 0; i < v.size(); ++i) o[i] = __float2half_rn(v[i]);
  return o;
}
std::vector<float> from_half(const std::vector<__half>& v) {
  std::vector<float> o(v.size());
  for (size_t i = 0; i < v.size(); ++i) o[i] = __half2float(v[i]);
  return o;
}
// Storing the output as f16 adds its rounding (unit roundoff 2^-11 of |y| <= max|ref|).
constexpr double kHalfOut = 1e-3;
const char* act_name(bool half) { return half ? " f16-act" : ""; }

void check(const std::string& name, const std::vector<float>& out, const std::vector<double>& ref, double tol) {
  double scale = 1e-12, err = 0;
  size_t worst = 0;
  for (double r : ref) scale = std::fmax(scale, std::fabs(r));
  for (size_t i = 0; i < out.size(); ++i) {
    double d = std::fabs(out[i] - ref[i]);
    if (std::isnan(d)) d = INFINITY;
    if (d > err) err = d, worst = i;
  }
  err /= scale;
  const bool ok = err <= tol;
  (ok ? g_pass : g_fail)++;
  std::printf("%s %-50s rel err %.2e (tol %.0e)", ok ? "ok  " : "FAIL", name.c_str(), err, tol);
  if (!ok) std::printf("  worst %zu: %g vs %g", worst, out[worst], ref[worst]);
  std::printf("\n");
  std::fflush(stdout);
}

std::mt19937 rng(5);
std::vector<float> randn(size_t n, float s = 1.f) {
  std::normal_distribution<float> d(0.f, s);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

using namespace sd::cuda::tc_gemm;

// Weights as the kernel sees them plus their exact values (after fp16 rounding of the tile).
struct W {
  sd::DType t;
  std::vector<uint8_t> bytes;
  std::vector<float> deq;    // [N, K], values the tile holds (fp16)
  std::vector<float> exact;  // [N, K], the weights' own values in f32
};

W make_weights(sd::DType t, int64_t N, int64_t K) {
  W w{t, {}, std::vector<float>(N * K), std::vector<float>(N * K)};
  std::uniform_int_distribution<int> q8(-127, 127), q4(0, 15);
  const auto f = randn(N * K, 0.1f);
  if (t == sd::DType::F32) {
    w.bytes.resize(N * K * 4);
    std::memcpy(w.bytes.data(), f.data(), w.bytes.size());
    for (int64_t i = 0; i < N * K; ++i) w.deq[i] = h(f[i]), w.exact[i] = f[i];
  } else if (t == sd::DType::F16) {
    w.bytes.resize(N * K * 2);
    for (int64_t i = 0; i < N * K; ++i) {
      const uint16_t b = __half_as_ushort(__float2half_rn(f[i]));
      std::memcpy(&w.bytes[2 * i], &b, 2);
      w.deq[i] = w.exact[i] = h(f[i]);
    }
  } else {
    const bool is4 = t == sd::DType::Q4_0;
    const int bs = is4 ? 18 : 34;
    w.bytes.resize(N * (K / 32) * bs);
    for (int64_t n = 0; n < N; ++n)
      for (int64_t b = 0; b < K / 32; ++b) {
        uint8_t* blk = &w.bytes[(n * (K / 32) + b) * bs];
        const float d = 0.001f + 0.01f * std::fabs(f[n * K + b * 32]);
        const uint16_t db = __half_as_ushort(__float2half_rn(d));
        std::memcpy(blk, &db, 2);
        const float dh = __half2float(__float2half_rn(d));
        for (int j = 0; j < 32; ++j) {
          float v;
          if (is4) {
            const int q = q4(rng);
            uint8_t& byte = blk[2 + (j & 15)];
            if (j < 16) byte = static_cast<uint8_t>((byte & 0xF0) | q);
            else byte = static_cast<uint8_t>((byte & 0x0F) | (q << 4));
            v = dh * static_cast<float>(q - 8);
          } else {
            const int q = q8(rng);
            blk[2 + j] = static_cast<uint8_t>(static_cast<int8_t>(q));
            v = dh * static_cast<float>(q);
          }
          w.deq[n * K + b * 32 + j] = h(v);
          w.exact[n * K + b * 32 + j] = v;
        }
      }
  }
  return w;
}

// The kernel the launch picks (gemm_tc_launch.cuh): the multi-stage one where both loaders copy
// with cp.async and g_stages is 4 (the sm_80+ default), the double-buffered one otherwise.
int g_stages = 4;
template <class ALoad, class WLoad, class Store>
void gemm_kernel(int64_t M, int64_t N, int64_t K, const ALoad& al, const WLoad& wl, const float* bias,
                 const Store& st, int tiles_per_split) {
  if constexpr (ALoad::kAsync && WLoad::kAsync) {
    if (g_stages == 4) {
      static_assert(tc_gemm_async_smem<4>() <= 96 * 1024, "the emulator's dynamic shared memory");
      return tc_gemm_async_kernel<4>(M, N, K, al, wl, bias, st, tiles_per_split);
    }
  }
  tc_gemm_kernel(M, N, K, al, wl, bias, st, tiles_per_split);
}

// splits > 1: the split-K path (partials into an f32 workspace, then the reduction kernel), with
// the workspace by channel when n_major (as for a conv's NCHW output).
int g_splits = 1;

template <class ALoad, class Store>
void run_gemm(int64_t M, int64_t N, int64_t K, const ALoad& al, const W& w, const float* bias, const Store& st,
              bool n_major = false) {
  const unsigned gx = static_cast<unsigned>((M + BM - 1) / BM), gy = static_cast<unsigned>((N + BN - 1) / BN);
  const int tiles = static_cast<int>((K + BK - 1) / BK);
  if (g_splits <= 1) {
    with_weights(w.t, w.bytes.data(), N, K, [&](auto wl) {
      run_grid(gx, gy, THREADS, [&] { gemm_kernel(M, N, K, al, wl, bias, st, tiles); });
    });
    return;
  }
  const int tps = (tiles + g_splits - 1) / g_splits, splits = (tiles + tps - 1) / tps;
  std::vector<float> ws(static_cast<size_t>(splits) * M * N, NAN);
  const SplitOut part{ws.data(), M, N, n_major};
  with_weights(w.t, w.bytes.data(), N, K, [&](auto wl) {
    run_grid(gx, gy, THREADS, [&] { gemm_kernel(M, N, K, al, wl, nullptr, part, tps); }, static_cast<unsigned>(splits));
  });
  run_grid(3, 1, 64, [&] { splitk_reduce_kernel<Store, int>(ws.data(), splits, part, bias, st); });  // as launched here
}

// acc: y starts as a residual r and the GEMM adds to it (DenseOut<T, true>: Backend::linear_add).
void test_linear(sd::DType t, int64_t M, int64_t N, int64_t K, bool half = false, bool acc = false) {
  const W w = make_weights(t, N, K);
  const auto x = randn(M * K), b = randn(N);
  const auto r = acc ? randn(M * N) : std::vector<float>(M * N, NAN);
  std::vector<float> y = r;
  if (half) {
    const auto xh = to_half(x);
    std::vector<__half> yh = to_half(r);
    if (acc) run_gemm(M, N, K, F16Rows{xh.data(), M, K, K % 8 == 0}, w, b.data(), DenseOut<__half, true>{yh.data(), N});
    else run_gemm(M, N, K, F16Rows{xh.data(), M, K, K % 8 == 0}, w, b.data(), DenseOut<__half>{yh.data(), N});
    y = from_half(yh);
  } else if (acc) {
    run_gemm(M, N, K, F32Rows{x.data(), M, K, K, K % 4 == 0}, w, b.data(), DenseOut<float, true>{y.data(), N});
  } else {
    run_gemm(M, N, K, F32Rows{x.data(), M, K, K, K % 4 == 0}, w, b.data(), DenseOut<float>{y.data(), N});
  }
  std::vector<double> ref(M * N);
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n) {
      double s = acc ? (half ? h(r[m * N + n]) : r[m * N + n]) + b[n] : b[n];
      for (int64_t k = 0; k < K; ++k) s += static_cast<double>(h(x[m * K + k])) * w.deq[n * K + k];
      ref[m * N + n] = s;
    }
  check(std::string("linear ") + sd::dtype_name(t) + " " + std::to_string(M) + "x" + std::to_string(N) + "x" +
            std::to_string(K) + act_name(half) + (g_splits > 1 ? " split-K" : "") +
            (g_stages != 4 ? " 2-stage" : ""),
        y, ref, half ? kHalfOut : 1e-5);
}

// f(wl): the loader of weights that take a Stack row map (f16, q8_0, q4_0), N rows of K.
template <class F>
void with_stack_loader(const W& w, int64_t N, int64_t K, F&& f) {
  if (w.t == sd::DType::F16) return f(F16Rows{reinterpret_cast<const __half*>(w.bytes.data()), N, K, K % 8 == 0});
  const int64_t rb = static_cast<int64_t>(sd::dtype_row_bytes(w.t, K));
  if (w.t == sd::DType::Q8_0) return f(QRows<false>{w.bytes.data(), N, K, rb});
  f(QRows<true>{w.bytes.data(), N, K, rb});
}

// linear_n (tc_linear_n): n weights stacked by rows through Stack, the columns stored to n outputs
// by SplitCols; f16 activations.
void test_linear_n(sd::DType t, int64_t M, int64_t part, int64_t K, int n) {
  std::vector<W> ws;
  for (int i = 0; i < n; ++i) ws.push_back(make_weights(t, part, K));
  const auto x = randn(M * K);
  const auto xh = to_half(x);
  std::vector<std::vector<__half>> ys(n, std::vector<__half>(M * part, __float2half(NAN)));
  const SplitCols<__half> st{{ys[0].data(), ys[1].data(), n > 2 ? ys[2].data() : nullptr}, part};
  const F16Rows a{xh.data(), M, K, K % 8 == 0};
  const int64_t N = part * n;
  const auto run = [&](auto wl) {
    wl.stack.part = part;
    for (int i = 1; i < n; ++i) wl.stack.more[i - 1] = reinterpret_cast<decltype(wl.base)>(ws[i].bytes.data());
    run_grid(static_cast<unsigned>((M + BM - 1) / BM), static_cast<unsigned>((N + BN - 1) / BN), THREADS,
             [&] { gemm_kernel(M, N, K, a, wl, nullptr, st, static_cast<int>((K + BK - 1) / BK)); });
  };
  with_stack_loader(ws[0], N, K, run);
  std::vector<float> y;
  std::vector<double> ref;
  for (int i = 0; i < n; ++i) {
    const auto yi = from_half(ys[i]);
    y.insert(y.end(), yi.begin(), yi.end());
    for (int64_t m = 0; m < M; ++m)
      for (int64_t c = 0; c < part; ++c) {
        double sum = 0;
        for (int64_t k = 0; k < K; ++k) sum += static_cast<double>(h(x[m * K + k])) * ws[i].deq[c * K + k];
        ref.push_back(sum);
      }
  }
  check(std::string("linear_n ") + sd::dtype_name(t) + " " + std::to_string(M) + "x" + std::to_string(part) + "x" +
            std::to_string(K) + " x" + std::to_string(n) + " f16-act",
        y, ref, kHalfOut);
}

// linear_geglu (tc_linear_geglu): the [2F, K] weight's rows interleaved by Stack::geglu_f, the
// epilogue (or, split, the reduction) pairing each result with its gate: y = a * gelu(gate), f16.
void test_linear_geglu(sd::DType t, int64_t M, int64_t F, int64_t K) {
  const int64_t N = 2 * F;
  const W w = make_weights(t, N, K);
  const auto x = randn(M * K), b = randn(N);
  const auto xh = to_half(x);
  std::vector<__half> yh(M * F, __float2half(NAN));
  const GegluOut<__half> st{yh.data(), F};
  const F16Rows a{xh.data(), M, K, K % 8 == 0};
  const unsigned gx = static_cast<unsigned>((M + BM - 1) / BM), gy = static_cast<unsigned>((N + BN - 1) / BN);
  const int tiles = static_cast<int>((K + BK - 1) / BK);
  with_stack_loader(w, N, K, [&](auto wl) {
    wl.stack.geglu_f = F;
    if (g_splits <= 1) return run_grid(gx, gy, THREADS, [&] { gemm_kernel(M, N, K, a, wl, b.data(), st, tiles); });
    const int tps = (tiles + g_splits - 1) / g_splits, splits = (tiles + tps - 1) / tps;
    std::vector<float> ws(static_cast<size_t>(splits) * M * N, NAN);
    const SplitOut part{ws.data(), M, N, false};
    run_grid(gx, gy, THREADS, [&] { gemm_kernel(M, N, K, a, wl, nullptr, part, tps); }, static_cast<unsigned>(splits));
    run_grid(3, 1, 64, [&] { splitk_geglu_reduce_kernel<GegluOut<__half>, int>(ws.data(), splits, part, b.data(), st); });
  });
  std::vector<double> ref(M * F);
  for (int64_t m = 0; m < M; ++m)
    for (int64_t c = 0; c < F; ++c) {
      double av = b[c], gv = b[F + c];
      for (int64_t k = 0; k < K; ++k) {
        av += static_cast<double>(h(x[m * K + k])) * w.deq[c * K + k];
        gv += static_cast<double>(h(x[m * K + k])) * w.deq[(F + c) * K + k];
      }
      ref[m * F + c] = av * 0.5 * gv * (1.0 + std::erf(gv / std::sqrt(2.0)));
    }
  check(std::string("linear_geglu ") + sd::dtype_name(t) + " " + std::to_string(M) + "x" + std::to_string(F) +
            " (2F) x" + std::to_string(K) + " f16-act" + (g_splits > 1 ? " split-K" : "") +
            (g_stages != 4 ? " 2-stage" : ""),
        from_half(yh), ref, kHalfOut);
}

// linear_to_channels (tc_linear_to_channels): tokens [B, P, K] through the row loaders, the results
// stored NCHW onto a residual by ConvOut's res, here y itself (in place, as a caller may).
void test_linear_to_channels(sd::DType t, int64_t B, int64_t P, int64_t C, int64_t K, bool half) {
  const W w = make_weights(t, C, K);
  const int64_t M = B * P;
  const auto x = randn(M * K), b = randn(C), r = randn(B * C * P);
  std::vector<float> y = r;
  if (half) {
    const auto xh = to_half(x);
    std::vector<__half> yh = to_half(r);
    run_gemm(M, C, K, F16Rows{xh.data(), M, K, K % 8 == 0}, w, b.data(), ConvOut<__half>{yh.data(), C, P, yh.data()},
             true);
    y = from_half(yh);
  } else {
    run_gemm(M, C, K, F32Rows{x.data(), M, K, K, K % 4 == 0}, w, b.data(), ConvOut<float>{y.data(), C, P, y.data()},
             true);
  }
  std::vector<double> ref(B * C * P);
  for (int64_t bi = 0; bi < B; ++bi)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t p = 0; p < P; ++p) {
        const int64_t i = (bi * C + c) * P + p;
        double s = (half ? h(r[i]) : r[i]) + b[c];
        for (int64_t k = 0; k < K; ++k) s += static_cast<double>(h(x[(bi * P + p) * K + k])) * w.deq[c * K + k];
        ref[i] = s;
      }
  check(std::string("linear_to_channels ") + sd::dtype_name(t) + " " + std::to_string(B) + "x" + std::to_string(P) +
            "x" + std::to_string(K) + ">" + std::to_string(C) + act_name(half) + (g_splits > 1 ? " split-K" : ""),
        y, ref, half ? kHalfOut : 1e-5);
}

// Backend::transpose12 ([B, A, C] -> [B, C, A]) through the NHWC copy's kernel with Out = T:
// tails on both tile dims, several batches.
template <class T>
void test_transpose12(int B, int A, int C) {
  const auto x = randn(static_cast<size_t>(B) * A * C);
  std::vector<T> xt(x.size()), y(x.size());
  for (size_t i = 0; i < x.size(); ++i) xt[i] = static_cast<T>(x[i]);
  const unsigned gx = static_cast<unsigned>((C + 31) / 32), gy = static_cast<unsigned>((A + 31) / 32);
  run_grid(gx, gy, sd::cuda::kTransposeThreads, [&] { sd::cuda::transpose_kernel<T, T>(xt.data(), y.data(), A, C); },
           static_cast<unsigned>(B));
  std::vector<float> got(y.size());
  std::vector<double> ref(y.size());
  for (int b = 0; b < B; ++b)
    for (int a = 0; a < A; ++a)
      for (int c = 0; c < C; ++c) {
        const size_t to = (static_cast<size_t>(b) * C + c) * A + a, from = (static_cast<size_t>(b) * A + a) * C + c;
        got[to] = static_cast<float>(y[to]);
        ref[to] = static_cast<float>(xt[from]);
      }
  check(std::string("transpose12 ") + std::to_string(B) + "x" + std::to_string(A) + "x" + std::to_string(C) +
            (sizeof(T) == 2 ? " f16" : " f32"),
        got, ref, 0);
}

// up = 1: the conv of a 2x nearest upsample of x (conv2d_upsampled); the reference upsamples.
// The NHWC path (gemm_tc_conv.cu): x copied channels-last as f16 by its kernel, 3x3 weights
// reordered tap-major in place by theirs, then the GEMM with NhwcConvRows.
template <class T>
void run_conv_nhwc(const std::vector<T>& x, int n, int ci, int hh, int ww, const W& w, int co, int ho, int wo, int ks,
                   int stride, int pad, int up, const float* bias, std::vector<T>& y, const T* res = nullptr,
                   const T* chan = nullptr) {
  namespace nh = sd::cuda::nhwc;
  const int P = hh * ww;
  const int64_t M = static_cast<int64_t>(n) * ho * wo, K = static_cast<int64_t>(ci) * ks * ks;
  std::vector<__half> xh(x.size(), __float2half(NAN));
  const unsigned gx = static_cast<unsigned>((P + 31) / 32), gy = static_cast<unsigned>((ci + 31) / 32);
  run_grid(gx, gy, sd::cuda::kTransposeThreads, [&] { sd::cuda::transpose_kernel<T>(x.data(), xh.data(), ci, P); },
           static_cast<unsigned>(n));
  const ConvOut<T> st{y.data(), co, static_cast<int64_t>(ho) * wo, res, chan};
  if (ks == 1) return run_gemm(M, co, K, NhwcConvRows<1>{xh.data(), M, ci, hh, ww, ho, wo, stride, pad, up}, w, bias, st, true);
  W wt = w;
  run_grid(static_cast<unsigned>(co), 1, nh::THREADS,
           [&] { nh::reorder_taps_kernel(reinterpret_cast<__half*>(wt.bytes.data()), ci, 9); });
  run_gemm(M, co, K, NhwcConvRows<3>{xh.data(), M, ci, hh, ww, ho, wo, stride, pad, up}, wt, bias, st, true);
}

// g_conv_add: the epilogue also adds chan [n, co] and res (y's shape), as Backend::conv2d_add.
bool g_conv_add = false;
void test_conv(sd::DType t, int n, int ci, int co, int hh, int ww, int ks, int stride, int pad, int up = 0,
               bool half = false, bool nhwc = false) {
  const int64_t K = static_cast<int64_t>(ci) * ks * ks;
  const int he = hh << up, we = ww << up;  // the input as the conv sees it
  const int ho = (he + 2 * pad - ks) / stride + 1, wo = (we + 2 * pad - ks) / stride + 1;
  const int64_t M = static_cast<int64_t>(n) * ho * wo;
  const W w = make_weights(t, co, K);
  const auto x = randn(static_cast<size_t>(n) * ci * hh * ww), b = randn(co);
  std::vector<float> y(M * co, NAN);
  const auto chan = g_conv_add ? randn(static_cast<size_t>(n) * co) : std::vector<float>();
  const auto res = g_conv_add ? randn(y.size()) : std::vector<float>();
  const auto chan_h = to_half(chan), res_h = to_half(res);
  if (half) {
    const auto xh = to_half(x);
    std::vector<__half> yh(y.size(), __float2half(NAN));
    const __half* rp = g_conv_add ? res_h.data() : nullptr;
    const __half* cp = g_conv_add ? chan_h.data() : nullptr;
    const ConvOut<__half> st{yh.data(), co, static_cast<int64_t>(ho) * wo, rp, cp};
    if (nhwc)
      run_conv_nhwc(xh, n, ci, hh, ww, w, co, ho, wo, ks, stride, pad, up, b.data(), yh, rp, cp);
    else if (ks == 3)
      run_gemm(M, co, K, ConvRows<3, __half>{xh.data(), M, K, hh, ww, ho, wo, stride, pad, up}, w, b.data(), st, true);
    else
      run_gemm(M, co, K, ConvRows<1, __half>{xh.data(), M, K, hh, ww, ho, wo, stride, pad, up}, w, b.data(), st, true);
    y = from_half(yh);
  } else {
    const float* rp = g_conv_add ? res.data() : nullptr;
    const float* cp = g_conv_add ? chan.data() : nullptr;
    const ConvOut<float> st{y.data(), co, static_cast<int64_t>(ho) * wo, rp, cp};
    if (nhwc) run_conv_nhwc(x, n, ci, hh, ww, w, co, ho, wo, ks, stride, pad, up, b.data(), y, rp, cp);
    else if (ks == 3) run_gemm(M, co, K, ConvRows<3>{x.data(), M, K, hh, ww, ho, wo, stride, pad, up}, w, b.data(), st, true);
    else run_gemm(M, co, K, ConvRows<1>{x.data(), M, K, hh, ww, ho, wo, stride, pad, up}, w, b.data(), st, true);
  }
  std::vector<double> ref(y.size());
  for (int img = 0; img < n; ++img)
    for (int o = 0; o < co; ++o)
      for (int oy = 0; oy < ho; ++oy)
        for (int ox = 0; ox < wo; ++ox) {
          double s = b[o];
          for (int c = 0; c < ci; ++c)
            for (int ky = 0; ky < ks; ++ky)
              for (int kx = 0; kx < ks; ++kx) {
                const int iy = oy * stride - pad + ky, ix = ox * stride - pad + kx;
                if (iy < 0 || iy >= he || ix < 0 || ix >= we) continue;
                const int sy = iy * hh / he, sx = ix * ww / we;  // F.interpolate(mode='nearest')
                s += static_cast<double>(h(x[((static_cast<int64_t>(img) * ci + c) * hh + sy) * ww + sx])) *
                     w.deq[o * K + (c * ks + ky) * ks + kx];
              }
          const int64_t i = ((static_cast<int64_t>(img) * co + o) * ho + oy) * wo + ox;
          if (g_conv_add) s += half ? h(chan[img * co + o]) + h(res[i]) : chan[img * co + o] + res[i];
          ref[i] = s;
        }
  check(std::string("conv ") + sd::dtype_name(t) + " k" + std::to_string(ks) + " s" + std::to_string(stride) + " p" +
            std::to_string(pad) + " " + std::to_string(ci) + "->" + std::to_string(co) + " " + std::to_string(hh) + "x" +
            std::to_string(ww) + (up ? " upsampled 2x" : "") + act_name(half) + (nhwc ? " nhwc" : "") +
            (g_conv_add ? " +chan +res" : "") +
            (g_splits > 1 ? " split-K" : "") +
            (g_stages != 4 ? " 2-stage" : ""),
        y, ref, half ? kHalfOut : 1e-5);
}

template <int DP>
void test_attention(int B, int nq, int nk, int heads, int d, bool causal, bool half = false) {
  namespace at = sd::cuda::tc_attn;
  const int width = heads * d;
  const auto q = randn(static_cast<size_t>(B) * nq * width), k = randn(static_cast<size_t>(B) * nk * width),
             v = randn(static_cast<size_t>(B) * nk * width);
  std::vector<float> y(q.size(), NAN);
  const float qscale = 1.4426950408889634f / std::sqrt(static_cast<float>(d));
  const int nk_pad = (nk + at::BKEY - 1) / at::BKEY * at::BKEY;
  std::vector<__half> k16(static_cast<size_t>(B) * heads * nk_pad * DP, __float2half(NAN)),
      v16(k16.size(), __float2half(NAN));
  const auto qh = to_half(q), kh = to_half(k), vh = to_half(v);
  run_grid(3, 1, 64, [&] {  // a small grid: the grid-stride loop must cover everything
    if (half) at::convert_kv_kernel(kh.data(), vh.data(), k16.data(), v16.data(), B, nk, heads, d, nk_pad, DP);
    else at::convert_kv_kernel(k.data(), v.data(), k16.data(), v16.data(), B, nk, heads, d, nk_pad, DP);
  });
  std::vector<__half> yh(y.size(), __float2half(NAN));
  static_assert(at::kKvStages<48> == 2 && at::kKvStages<80> == 2 && at::kKvStages<96> == 1 && at::kKvStages<160> == 1, "stages");
  run_grid(static_cast<unsigned>((nq + at::BQ - 1) / at::BQ), static_cast<unsigned>(B * heads), at::THREADS, [&] {
    if (half)
      at::tc_attention_kernel<DP, __half>(qh.data(), k16.data(), v16.data(), yh.data(), nq, nk, nk_pad, heads, d, qscale,
                                          causal);
    else
      at::tc_attention_kernel<DP>(q.data(), k16.data(), v16.data(), y.data(), nq, nk, nk_pad, heads, d, qscale, causal);
  });
  if (half) y = from_half(yh);
  // Reference: fp16-rounded inputs, exact softmax (P's own fp16 rounding is the kernel's: tol 2e-3).
  std::vector<double> ref(y.size());
  for (int b = 0; b < B; ++b)
    for (int hd = 0; hd < heads; ++hd)
      for (int i = 0; i < nq; ++i) {
        const float* qi = &q[(static_cast<size_t>(b) * nq + i) * width + hd * d];
        std::vector<double> s(nk);
        double mx = -INFINITY;
        for (int j = 0; j < nk; ++j) {
          if (causal && j > i) { s[j] = -INFINITY; continue; }
          const float* kj = &k[(static_cast<size_t>(b) * nk + j) * width + hd * d];
          double a = 0;
          // f16 activations: q is f16 before the scale, then rounded again once scaled.
          for (int c = 0; c < d; ++c) a += static_cast<double>(h((half ? h(qi[c]) : qi[c]) * qscale)) * h(kj[c]);
          s[j] = a;
          mx = std::fmax(mx, a);
        }
        double l = 0;
        for (int j = 0; j < nk; ++j) l += s[j] = std::exp2(s[j] - mx);
        for (int c = 0; c < d; ++c) {
          double o = 0;
          for (int j = 0; j < nk; ++j) o += s[j] * h(v[(static_cast<size_t>(b) * nk + j) * width + hd * d + c]);
          ref[(static_cast<size_t>(b) * nq + i) * width + hd * d + c] = o / l;
        }
      }
  check("attention b" + std::to_string(B) + " nq" + std::to_string(nq) + " nk" + std::to_string(nk) + " h" +
            std::to_string(heads) + " d" + std::to_string(d) + (causal ? " causal" : "") + act_name(half),
        y, ref, 2e-3);
}

// Head dims above 160 (attention_wide.cu): heads split to f16 (V transposed), then per head and
// chunk of query rows S = Q K^T, the softmax, O = P V into the head's output columns -- the same
// kernels and chunk plan as the host code; `chunk_bytes` small forces several chunks.
void test_attention_wide(int B, int nq, int nk, int heads, int d, bool causal, bool half, int64_t chunk_bytes) {
  namespace aw = sd::cuda::tc_wide;
  const int width = heads * d;
  const auto q = randn(static_cast<size_t>(B) * nq * width), k = randn(static_cast<size_t>(B) * nk * width),
             v = randn(static_cast<size_t>(B) * nk * width);
  const aw::Plan pl = aw::plan(B, nq, nk, heads, d, 132, false, chunk_bytes);
  std::vector<__half> q16(static_cast<size_t>(B) * heads * nq * d, __float2half(NAN)),
      k16(static_cast<size_t>(B) * heads * nk * d, __float2half(NAN)), vt16(k16.size(), __float2half(NAN)),
      p16(static_cast<size_t>(pl.rows) * nk, __float2half(NAN)), yh(q.size(), __float2half(NAN));
  std::vector<float> s(static_cast<size_t>(pl.rows) * nk, NAN), y(q.size(), NAN);
  const auto qh = to_half(q), kh = to_half(k), vh = to_half(v);
  run_grid(3, 1, 64, [&] {  // a small grid: the grid-stride loops must cover everything
    if (half) {
      aw::split_heads_kernel(qh.data(), q16.data(), B, nq, heads, d, false);
      aw::split_heads_kernel(kh.data(), k16.data(), B, nk, heads, d, false);
      aw::split_heads_kernel(vh.data(), vt16.data(), B, nk, heads, d, true);
    } else {
      aw::split_heads_kernel(q.data(), q16.data(), B, nq, heads, d, false);
      aw::split_heads_kernel(k.data(), k16.data(), B, nk, heads, d, false);
      aw::split_heads_kernel(v.data(), vt16.data(), B, nk, heads, d, true);
    }
  });
  const float scale_log2 = 1.4426950408889634f / std::sqrt(static_cast<float>(d));
  auto gemm = [&](int64_t M, int64_t N, int64_t K, const F16Rows& a, const F16Rows& w, auto st) {
    run_grid(static_cast<unsigned>((M + BM - 1) / BM), static_cast<unsigned>((N + BN - 1) / BN), THREADS,
             [&] { gemm_kernel(M, N, K, a, w, nullptr, st, static_cast<int>((K + BK - 1) / BK)); });
  };
  for (int bh = 0; bh < B * heads; ++bh) {
    const int b = bh / heads, hd = bh - b * heads;
    const __half* kp = k16.data() + static_cast<int64_t>(bh) * nk * d;
    const __half* vp = vt16.data() + static_cast<int64_t>(bh) * d * nk;
    for (int64_t m0 = 0; m0 < nq; m0 += pl.rows) {
      const int64_t rows = std::min<int64_t>(pl.rows, nq - m0);
      const __half* qp = q16.data() + (static_cast<int64_t>(bh) * nq + m0) * d;
      const F16Rows qa{qp, rows, d, F16Rows::vec_ok(qp, d)}, kw{kp, nk, d, F16Rows::vec_ok(kp, d)};
      gemm(rows, nk, d, qa, kw, DenseOut<float>{s.data(), nk});
      run_grid(static_cast<unsigned>((rows + 7) / 8), 1, 256,
               [&] { aw::softmax_rows_kernel(s.data(), p16.data(), rows, nk, scale_log2, causal, m0); });
      const int64_t off = ((static_cast<int64_t>(b) * nq + m0) * heads + hd) * d;
      const F16Rows pa{p16.data(), rows, nk, F16Rows::vec_ok(p16.data(), nk)}, vw{vp, d, nk, F16Rows::vec_ok(vp, nk)};
      if (half) gemm(rows, d, nk, pa, vw, DenseOut<__half>{yh.data() + off, width});
      else gemm(rows, d, nk, pa, vw, DenseOut<float>{y.data() + off, width});
    }
  }
  if (half) y = from_half(yh);
  std::vector<double> ref(y.size());
  for (int b = 0; b < B; ++b)
    for (int hd = 0; hd < heads; ++hd)
      for (int i = 0; i < nq; ++i) {
        const size_t qo = (static_cast<size_t>(b) * nq + i) * width + hd * d;
        const int valid = causal ? std::min(nk, i + 1) : nk;
        std::vector<double> e(valid);
        double mx = -INFINITY, l = 0;
        for (int j = 0; j < valid; ++j) {
          double a = 0;
          const size_t ko = (static_cast<size_t>(b) * nk + j) * width + hd * d;
          for (int c = 0; c < d; ++c) a += static_cast<double>(h(q[qo + c])) * h(k[ko + c]);
          mx = std::fmax(mx, e[j] = a / std::sqrt(static_cast<double>(d)));
        }
        for (int j = 0; j < valid; ++j) l += e[j] = std::exp(e[j] - mx);
        for (int c = 0; c < d; ++c) {
          double o = 0;
          for (int j = 0; j < valid; ++j) o += e[j] * h(v[(static_cast<size_t>(b) * nk + j) * width + hd * d + c]);
          ref[qo + c] = o / l;
        }
      }
  check("wide attention b" + std::to_string(B) + " nq" + std::to_string(nq) + " nk" + std::to_string(nk) + " h" +
            std::to_string(heads) + " d" + std::to_string(d) + (causal ? " causal" : "") + " rows/chunk " +
            std::to_string(pl.rows) + act_name(half),
        y, ref, half ? 2e-3 + kHalfOut : 2e-3);
}

void test_group_norm(int N, int C, int H, int Wd, int groups, bool silu, bool half = false) {
  namespace gn = sd::cuda::gn_split;
  const int64_t plane = static_cast<int64_t>(H) * Wd, len = C / groups * plane;
  auto x = randn(static_cast<size_t>(N) * C * plane);
  for (size_t i = 0; i < x.size(); ++i) x[i] += 3.f * static_cast<float>((i / len) % 3);
  if (half) x = from_half(to_half(x));  // the reference sees the f16 inputs
  const auto gamma = randn(C), beta = randn(C);
  std::vector<double> stats(2 * N * groups, 0.0);
  std::vector<float> y(x.size(), NAN);
  const bool vec = len % 4 == 0;
  const auto xh = to_half(x);
  std::vector<__half> yh(y.size(), __float2half(NAN));
  run_grid(static_cast<unsigned>((len + gn::CHUNK - 1) / gn::CHUNK), static_cast<unsigned>(N * groups), gn::THREADS, [&] {
    if (half) gn::gn_stats_kernel(xh.data(), len, vec, stats.data());
    else gn::gn_stats_kernel(x.data(), len, vec, stats.data());
  });
  run_grid(2, static_cast<unsigned>(N * C), gn::THREADS, [&] {
    if (half)
      gn::gn_apply_kernel(xh.data(), yh.data(), C, C / groups, plane, stats.data(), len, gamma.data(), beta.data(), 1e-5f,
                          silu, plane % 4 == 0);
    else
      gn::gn_apply_kernel(x.data(), y.data(), C, C / groups, plane, stats.data(), len, gamma.data(), beta.data(), 1e-5f,
                          silu, plane % 4 == 0);
  });
  if (half) y = from_half(yh);
  std::vector<double> ref(x.size());
  for (int64_t g = 0; g < N * groups; ++g) {
    double m = 0, v = 0;
    for (int64_t i = 0; i < len; ++i) m += x[g * len + i];
    m /= len;
    for (int64_t i = 0; i < len; ++i) v += (x[g * len + i] - m) * (x[g * len + i] - m);
    v /= len;
    for (int64_t i = 0; i < len; ++i) {
      const int c = static_cast<int>(((g * len + i) / plane) % C);
      double o = (x[g * len + i] - m) / std::sqrt(v + 1e-5) * gamma[c] + beta[c];
      if (silu) o = o / (1 + std::exp(-o));
      ref[g * len + i] = o;
    }
  }
  check("group_norm split " + std::to_string(N) + "x" + std::to_string(C) + "x" + std::to_string(H) + "x" +
            std::to_string(Wd) + " g" + std::to_string(groups) + (silu ? " silu" : "") + act_name(half),
        y, ref, half ? kHalfOut : 1e-5);
}

// The split-K plan on a 132-SM GPU (H100 SXM / H200) for the UNet's small-grid layers at 512x512.
void test_split_plan() {
  struct Case { const char* what; int64_t blocks, K; int lo, hi; };
  const Case cases[] = {
      {"1280-ch conv at 8x8, batch 2 (10 tiles, K 11520)", 10, 11520, 8, 32},
      {"1280-ch conv at 16x16 (40 tiles, K 11520)", 40, 11520, 2, 4},
      {"640-ch conv at 32x32 (80 tiles: 52 SMs idle)", 80, 5760, 2, 4},
      {"1280 linear at 16x16 (40 tiles, K 1280)", 40, 1280, 1, 4},
      {"a full grid (300 tiles)", 300, 11520, 1, 1},
      {"short K (4 k-tiles)", 2, 128, 1, 1},
  };
  for (const Case& c : cases) {
    const SplitK sk = split_k(c.blocks, c.K, 132);  // an H100/H200 counted at one block per SM
    const int tiles = static_cast<int>((c.K + BK - 1) / BK);
    const bool covers = sk.splits == 1 || (static_cast<int64_t>(sk.splits) * sk.tiles_per_split >= tiles &&
                                           (sk.splits - 1) * sk.tiles_per_split < tiles && sk.tiles_per_split >= 4);
    const bool ok = covers && sk.splits >= c.lo && sk.splits <= c.hi;
    (ok ? g_pass : g_fail)++;
    std::printf("%s split-K plan: %-50s %d splits of %d k-tiles (want %d..%d)\n", ok ? "ok  " : "FAIL", c.what,
                sk.splits, sk.tiles_per_split, c.lo, c.hi);
  }
}

// The wide-attention chunk plan at the VAE's shapes on a 132-SM GPU: rows per chunk, and scratch
// that holds f16 Q/K/V^T, the chunk's scores and any split-K partials of either GEMM.
void test_wide_plan() {
  struct Case { const char* what; int64_t nq, rows, max_mb; };
  const Case cases[] = {
      {"VAE mid 512x512 (4096 tokens)", 4096, 1024, 48},
      {"VAE mid 1024x1024 untiled (16384 tokens)", 16384, 256, 80},
      {"VAE mid 256x256 (1024 tokens: one chunk)", 1024, 1024, 16},
  };
  for (const Case& c : cases) {
    const auto pl = sd::cuda::tc_wide::plan(1, c.nq, c.nq, 1, 512, 132, true);
    const int64_t last = c.nq - (c.nq - 1) / pl.rows * pl.rows;
    size_t ws = 0;
    for (int64_t rows : {pl.rows, last}) {
      ws = std::max(ws, splitk_workspace_bytes(split_plan(rows, c.nq, 512, 132, true), rows, c.nq));
      ws = std::max(ws, splitk_workspace_bytes(split_plan(rows, 512, c.nq, 132, true), rows, 512));
    }
    const bool ok = pl.rows == c.rows && pl.total <= c.max_mb << 20 && pl.ws_bytes >= static_cast<int64_t>(ws) &&
                    pl.s + pl.rows * c.nq * 4 <= pl.p && pl.p + pl.rows * c.nq * 2 <= pl.ws;
    (ok ? g_pass : g_fail)++;
    std::printf("%s wide-attention plan: %-44s %lld rows/chunk, scratch %.1f MB (split-K %.1f MB)\n", ok ? "ok  " : "FAIL",
                c.what, static_cast<long long>(pl.rows), pl.total / 1048576.0, pl.ws_bytes / 1048576.0);
  }
}

}  // namespace

int main() {
  test_split_plan();
  test_wide_plan();
  for (sd::DType t : {sd::DType::F32, sd::DType::F16, sd::DType::Q8_0, sd::DType::Q4_0}) {
    const bool q = t == sd::DType::Q8_0 || t == sd::DType::Q4_0;
    test_linear(t, 150, 137, q ? 96 : 80);
    if (!q) test_linear(t, 7, 3, 36);
    test_conv(t, 2, q ? 32 : 4, 20, 9, 7, 3, 1, 1);
    test_conv(t, 1, 32, 9, 11, 9, 3, 2, 0);
    test_conv(t, 1, 32, 9, 10, 7, 3, 2, 1);  // the UNet's downsample
    test_conv(t, 1, 64, 130, 5, 6, 1, 1, 0);
    test_conv(t, 2, 32, 20, 5, 7, 3, 1, 1, 1);
  }
  test_attention<48>(2, 70, 77, 2, 40, false);
  test_attention<48>(1, 130, 130, 1, 40, true);
  test_attention<16>(1, 65, 100, 3, 8, false);
  test_attention<64>(1, 77, 77, 1, 64, true);
  test_attention<160>(1, 20, 70, 1, 160, false);
  test_attention<80>(2, 33, 200, 2, 80, false);   // 4 key tiles: the double buffer turns over twice
  test_attention<160>(1, 130, 130, 1, 160, true);  // single buffer, causal over 3 tiles
  test_attention<128>(1, 70, 130, 3, 100, false);
  test_attention_wide(1, 300, 150, 1, 192, false, false, 150 * 6 * 128);  // 3 chunks: 128, 128, 44 rows
  test_attention_wide(2, 130, 130, 2, 200, true, false, 130 * 6 * 128);   // causal across chunks, d % 16 != 0
  test_attention_wide(1, 100, 77, 1, 256, false, false, sd::cuda::tc_wide::kChunkBytes);    // nk % 8 != 0: P V without cp.async
  test_group_norm(2, 64, 24, 24, 32, true);  // len 1152: float4 path, one chunk
  test_group_norm(1, 32, 33, 35, 8, false);  // len 4620: scalar path, two chunks
  test_group_norm(1, 64, 40, 40, 32, true);  // len 3200
  // f16 activations: A through cp.async (vector and scalar rows), the conv gather, stores.
  for (sd::DType t : {sd::DType::F16, sd::DType::Q8_0, sd::DType::Q4_0}) {
    const bool q = t != sd::DType::F16;
    test_linear(t, 150, 137, q ? 96 : 80, true);
    if (!q) test_linear(t, 7, 3, 36, true);
    test_conv(t, 2, q ? 32 : 4, 20, 9, 7, 3, 1, 1, 0, true);
    test_conv(t, 1, 32, 9, 11, 9, 3, 2, 0, 0, true);
    test_conv(t, 1, 64, 130, 5, 6, 1, 1, 0, 0, true);
    test_conv(t, 2, 32, 20, 5, 7, 3, 1, 1, 1, true);
  }
  // The conv gather's tables and bit masks: several M tiles with images straddling them, every
  // up = 1 parity class, chunks past K (K 72 and 20), 1x1 with K not a multiple of 16.
  test_conv(sd::DType::F16, 2, 8, 20, 9, 9, 3, 1, 1, 1);
  test_conv(sd::DType::F16, 2, 20, 24, 13, 17, 3, 1, 1, 0, true);
  test_conv(sd::DType::Q8_0, 1, 32, 24, 13, 17, 3, 2, 1, 0, true);
  test_conv(sd::DType::F32, 1, 20, 9, 12, 12, 1, 1, 0);
  // Even N: the paired 2-element stores (odd N above takes the scalar ones).
  test_linear(sd::DType::Q4_0, 150, 136, 96);
  test_linear(sd::DType::F16, 70, 130, 80, true);
  // Split-K (the small-grid path): uneven splits (K tiles 9 over 4 -> 3 splits of 3), f16 and f32
  // activations, dense and NCHW partial layouts, quantized weights.
  g_splits = 4;
  test_linear(sd::DType::F16, 150, 137, 288);
  test_linear(sd::DType::Q8_0, 70, 200, 288, true);
  test_conv(sd::DType::F16, 2, 32, 20, 9, 7, 3, 1, 1);
  test_conv(sd::DType::Q4_0, 1, 32, 40, 5, 7, 3, 1, 1, 1, true);
  g_splits = 1;
  // The NHWC conv (3x3, f16 weights, C % 8 == 0): taps past the image on every side, stride 2 with
  // and without padding, the upsampled read, chunks straddling taps (C = 40: 32-wide k-tiles cross
  // taps), M and N tails, several images, f16 and f32 activations; with split-K and with the
  // double-buffered kernel too.
  test_conv(sd::DType::F16, 2, 40, 20, 9, 7, 3, 1, 1, 0, true, true);
  test_conv(sd::DType::F16, 1, 32, 9, 11, 9, 3, 2, 0, 0, true, true);
  test_conv(sd::DType::F16, 1, 16, 9, 10, 7, 3, 2, 1, 0, true, true);
  test_conv(sd::DType::F16, 2, 8, 20, 5, 7, 3, 1, 1, 1, true, true);
  test_conv(sd::DType::F16, 2, 24, 130, 13, 17, 3, 1, 1, 0, false, true);
  test_linear(sd::DType::F16, 150, 137, 80, true, true);  // linear_add: odd N (scalar) and pairs
  test_linear(sd::DType::Q4_0, 70, 130, 96, false, true);
  test_linear_n(sd::DType::F16, 150, 130, 80, 3);  // tiles straddle the stacked weights
  test_linear_n(sd::DType::Q4_0, 70, 66, 64, 2);
  test_linear_n(sd::DType::Q8_0, 40, 2, 96, 3);   // several weights in one tile
  // GEGLU in the epilogue: M tails, a last N tile of one 16-row group (F 72), F = 8 (most warps past
  // N), both kernels, and through the split-K reduction.
  test_linear_geglu(sd::DType::F16, 150, 72, 80);
  test_linear_geglu(sd::DType::Q8_0, 70, 136, 96);
  test_linear_geglu(sd::DType::Q4_0, 40, 8, 64);
  g_splits = 4;
  test_linear_geglu(sd::DType::F16, 70, 72, 288);
  test_linear_geglu(sd::DType::Q4_0, 40, 136, 288);
  g_splits = 1;
  g_stages = 2;
  test_linear_geglu(sd::DType::F16, 150, 72, 80);
  g_stages = 4;
  // proj_out stored NCHW onto the residual: images straddling M tiles, N tails, f32 and f16
  // activations, quantized weights, and through the split-K reduction (partials by channel).
  test_linear_to_channels(sd::DType::F16, 2, 70, 136, 96, true);
  test_linear_to_channels(sd::DType::Q8_0, 1, 150, 40, 64, true);
  test_linear_to_channels(sd::DType::F32, 2, 33, 20, 36, false);
  g_splits = 4;
  test_linear_to_channels(sd::DType::F16, 2, 40, 130, 288, true);
  g_splits = 1;
  // conv2d_add's epilogue (timestep embedding per image and channel, then the skip): both gathers,
  // f16 and f32, quantized weights, and through the split-K reduction.
  g_conv_add = true;
  test_conv(sd::DType::F16, 2, 40, 20, 9, 7, 3, 1, 1, 0, true, true);
  test_conv(sd::DType::Q8_0, 2, 32, 20, 9, 7, 3, 1, 1, 0, true);
  test_conv(sd::DType::F32, 2, 8, 20, 9, 9, 3, 1, 1);
  g_splits = 4;
  test_conv(sd::DType::Q4_0, 1, 32, 40, 5, 7, 3, 1, 1, 0, true);
  test_conv(sd::DType::F16, 2, 40, 130, 5, 6, 3, 1, 1, 0, true, true);
  g_splits = 1;
  g_conv_add = false;
  test_transpose12<float>(2, 70, 33);
  test_transpose12<__half>(3, 40, 65);
  // 1x1 through NHWC, any weight type (quantized: the double-buffered kernel with a cp.async A).
  test_conv(sd::DType::F16, 2, 40, 130, 5, 6, 1, 1, 0, 0, true, true);
  test_conv(sd::DType::Q4_0, 2, 64, 20, 5, 6, 1, 1, 0, 0, true, true);
  test_conv(sd::DType::Q8_0, 1, 96, 24, 7, 5, 1, 1, 0, 0, false, true);
  g_splits = 4;
  test_linear(sd::DType::F16, 70, 130, 288, true, true);  // linear_add through the split-K reduction
  test_conv(sd::DType::F16, 1, 40, 40, 5, 7, 3, 1, 1, 1, true, true);
  g_splits = 1;
  g_stages = 2;
  test_conv(sd::DType::F16, 2, 40, 20, 9, 7, 3, 1, 1, 0, true, true);
  test_linear(sd::DType::F16, 150, 137, 80, true);
  g_stages = 4;
  test_attention<48>(2, 70, 77, 2, 40, false, true);
  test_attention<80>(2, 33, 200, 2, 80, false, true);
  test_attention<160>(1, 130, 130, 1, 160, true, true);
  test_attention_wide(1, 300, 150, 1, 192, false, true, 150 * 6 * 128);
  test_attention_wide(2, 130, 130, 2, 200, true, true, 130 * 6 * 128);
  test_group_norm(2, 64, 24, 24, 32, true, true);
  test_group_norm(1, 32, 33, 35, 8, false, true);
  if (g_leftover) {
    std::printf("FAIL cp.async copies left pending when a thread ended\n");
    ++g_fail;
  }
  std::printf("tc emulation%s: %d passed, %d failed\n",
#ifdef SDNODE_EMU_SM75
              " (sm_75: m16n8k8 pairs)",
#else
              "",
#endif
              g_pass, g_fail);
  return g_fail ? 1 : 0;
}
