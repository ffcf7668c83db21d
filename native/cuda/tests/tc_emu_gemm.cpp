// The host emulation's GEMM and conv cases (tests/tc_emulation.cpp): linear and its fused forms
// (stacked weights, GEGLU, NCHW residual stores), and conv2d through both gathers, with every
// weight type, both kernels and split-K.
#include "tc_emu_harness.h"

#include "cuda/norm_split_kernel.cuh"

namespace emu_test {
namespace {

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


// 3x3 weights laid out tap-major in place by their kernel, as gemm_tc_conv.cu's
// tc_conv_weight_to_taps: f16 reordered, q8_0/q4_0 repacked from a copy of their bytes.
W to_taps(const W& w, int co, int ci) {
  namespace nh = sd::cuda::nhwc;
  W wt = w;
  if (w.t == sd::DType::F16) {
    run_grid(static_cast<unsigned>(co), 1, nh::THREADS,
             [&] { nh::reorder_taps_kernel(reinterpret_cast<__half*>(wt.bytes.data()), ci, 9); });
  } else {
    std::fill(wt.bytes.begin(), wt.bytes.end(), 0xA5);  // every byte must be written
    run_grid(static_cast<unsigned>(co), 1, nh::THREADS, [&] {
      if (w.t == sd::DType::Q4_0) nh::repack_q_taps_kernel<true>(w.bytes.data(), wt.bytes.data(), ci);
      else nh::repack_q_taps_kernel<false>(w.bytes.data(), wt.bytes.data(), ci);
    });
  }
  return wt;
}

// How test_conv gathers A: ConvRows (NCHW, the weights' own k order), the NHWC copy
// (NhwcConvRows: 1x1, or 3x3 over tap-major weights) or ConvTapRows (NCHW, tap-major weights).
enum Gather { kRows = 0, kNhwc = 1, kTaps = 2 };

// up = 1: the conv of a 2x nearest upsample of x (conv2d_upsampled); the reference upsamples.
// The NHWC path (gemm_tc_conv.cu): x copied channels-last as f16 by its kernel, 3x3 weights laid
// out tap-major, then the GEMM with NhwcConvRows; kTaps: the same weights, ConvTapRows over x.
template <class T>
void run_conv_taps(int gather, const std::vector<T>& x, int n, int ci, int hh, int ww, const W& w, int co, int ho,
                   int wo, int ks, int stride, int pad, int up, const float* bias, std::vector<T>& y,
                   const T* res = nullptr, const T* chan = nullptr) {
  const int P = hh * ww;
  const int64_t M = static_cast<int64_t>(n) * ho * wo, K = static_cast<int64_t>(ci) * ks * ks;
  const ConvOut<T> st{y.data(), co, static_cast<int64_t>(ho) * wo, res, chan};
  const W wt = ks == 3 ? to_taps(w, co, ci) : w;
  if (gather == kTaps) {
    with_tap_weights(wt.t, wt.bytes.data(), co, K, [&](auto wl, auto cb) {
      run_gemm_w(M, co, K, ConvTapRows<decltype(cb)::value, T>{x.data(), M, ci, hh, ww, ho, wo, stride, pad, up}, wl,
                 bias, st, true);
    });
    return;
  }
  std::vector<__half> xh(x.size(), __float2half(NAN));
  const unsigned gx = static_cast<unsigned>((P + 31) / 32), gy = static_cast<unsigned>((ci + 31) / 32);
  run_grid(gx, gy, sd::cuda::kTransposeThreads, [&] { sd::cuda::transpose_kernel<T>(x.data(), xh.data(), ci, P, sd::cuda::PlainMap{}); },
           static_cast<unsigned>(n));
  if (ks == 1) return run_gemm(M, co, K, NhwcConvRows<1>{xh.data(), M, ci, hh, ww, ho, wo, stride, pad, up}, w, bias, st, true);
  with_tap_weights(wt.t, wt.bytes.data(), co, K, [&](auto wl, auto cb) {
    run_gemm_w(M, co, K, NhwcConvRows<3, decltype(cb)::value>{xh.data(), M, ci, hh, ww, ho, wo, stride, pad, up}, wl,
               bias, st, true);
  });
}

// g_conv_add: the epilogue also adds chan [n, co] and res (y's shape), as Backend::conv2d_add.
bool g_conv_add = false;
void test_conv(sd::DType t, int n, int ci, int co, int hh, int ww, int ks, int stride, int pad, int up = 0,
               bool half = false, int gather = kRows) {
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
    if (gather != kRows)
      run_conv_taps(gather, xh, n, ci, hh, ww, w, co, ho, wo, ks, stride, pad, up, b.data(), yh, rp, cp);
    else if (ks == 3)
      run_gemm(M, co, K, ConvRows<3, __half>{xh.data(), M, K, hh, ww, ho, wo, stride, pad, up}, w, b.data(), st, true);
    else
      run_gemm(M, co, K, ConvRows<1, __half>{xh.data(), M, K, hh, ww, ho, wo, stride, pad, up}, w, b.data(), st, true);
    y = from_half(yh);
  } else {
    const float* rp = g_conv_add ? res.data() : nullptr;
    const float* cp = g_conv_add ? chan.data() : nullptr;
    const ConvOut<float> st{y.data(), co, static_cast<int64_t>(ho) * wo, rp, cp};
    if (gather != kRows) run_conv_taps(gather, x, n, ci, hh, ww, w, co, ho, wo, ks, stride, pad, up, b.data(), y, rp, cp);
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
            std::to_string(ww) + (up ? " upsampled 2x" : "") + act_name(half) + (gather == kNhwc ? " nhwc" : gather == kTaps ? " taps" : "") +
            (g_conv_add ? " +chan +res" : "") +
            (g_splits > 1 ? " split-K" : "") +
            (g_stages != 4 ? " 2-stage" : ""),
        y, ref, half ? kHalfOut : 1e-5);
}

// Backend::norm_conv2d on the NHWC path: the group_norm statistics, the input copy normalising as it
// goes (GnMap: GroupNorm + SiLU), the conv (stride 1, same padding); against the three in double.
// The tile holds the normalised values rounded to f16, as does the reference (h), but the kernel
// normalises in f32 and may land on the other side of a rounding: kHalfOut.
void test_norm_conv(sd::DType t, int n, int ci, int co, int hh, int ww, int ks, int groups, bool half) {
  namespace gn = sd::cuda::gn_split;
  const int64_t plane = static_cast<int64_t>(hh) * ww, len = ci / groups * plane, K = static_cast<int64_t>(ci) * ks * ks;
  const int64_t M = n * plane;
  auto x = randn(static_cast<size_t>(n) * ci * plane);
  for (size_t i = 0; i < x.size(); ++i) {  // channels of different scales and offsets: groups' statistics differ
    const auto c = static_cast<float>((i / plane) % ci);
    x[i] = x[i] * (1.f + std::fmod(c, 5.f)) + 2.f * std::fmod(c, 7.f);
  }
  if (half) x = from_half(to_half(x));
  const auto gamma = randn(ci), beta = randn(ci), b = randn(co);
  const W w = make_weights(t, co, K);
  const auto x16 = to_half(x);
  std::vector<double> stats(static_cast<size_t>(2 * n * groups), 0.0);
  run_grid(static_cast<unsigned>((len + gn::CHUNK - 1) / gn::CHUNK), static_cast<unsigned>(n * groups), gn::THREADS, [&] {
    if (half) gn::gn_stats_kernel(x16.data(), len, len % 4 == 0, stats.data());
    else gn::gn_stats_kernel(x.data(), len, len % 4 == 0, stats.data());
  });
  const gn::GnMap map{stats.data(), gamma.data(), beta.data(), ci / groups, groups, len, 1e-5f, true};
  std::vector<__half> xn(x.size(), __float2half(NAN));
  const int P = static_cast<int>(plane);
  run_grid(static_cast<unsigned>((P + 31) / 32), static_cast<unsigned>((ci + 31) / 32), sd::cuda::kTransposeThreads, [&] {
    if (half) sd::cuda::transpose_kernel<__half, __half, gn::GnMap>(x16.data(), xn.data(), ci, P, map);
    else sd::cuda::transpose_kernel<float, __half, gn::GnMap>(x.data(), xn.data(), ci, P, map);
  }, static_cast<unsigned>(n));
  std::vector<float> y(static_cast<size_t>(M) * co, NAN);
  std::vector<__half> yh(y.size(), __float2half(NAN));
  const auto conv = [&](auto st) {
    if (ks == 1)
      return run_gemm(M, co, K, NhwcConvRows<1>{xn.data(), M, ci, hh, ww, hh, ww, 1, 0, 0}, w, b.data(), st, true);
    const W wt = to_taps(w, co, ci);
    with_tap_weights(wt.t, wt.bytes.data(), co, K, [&](auto wl, auto cb) {
      run_gemm_w(M, co, K, NhwcConvRows<3, decltype(cb)::value>{xn.data(), M, ci, hh, ww, hh, ww, 1, 1, 0}, wl, b.data(),
                 st, true);
    });
  };
  if (half) {
    conv(ConvOut<__half>{yh.data(), co, plane});
    y = from_half(yh);
  } else {
    conv(ConvOut<float>{y.data(), co, plane});
  }
  std::vector<double> xr = group_norm_ref(x, ci, plane, groups, gamma, beta, true);
  for (double& v : xr) v = h(static_cast<float>(v));  // the tile's f16
  std::vector<double> ref(y.size());
  const int pad = ks / 2;
  for (int img = 0; img < n; ++img)
    for (int o = 0; o < co; ++o)
      for (int oy = 0; oy < hh; ++oy)
        for (int ox = 0; ox < ww; ++ox) {
          double acc = b[o];
          for (int c = 0; c < ci; ++c)
            for (int ky = 0; ky < ks; ++ky)
              for (int kx = 0; kx < ks; ++kx) {
                const int iy = oy - pad + ky, ix = ox - pad + kx;
                if (iy < 0 || iy >= hh || ix < 0 || ix >= ww) continue;
                acc += xr[((static_cast<int64_t>(img) * ci + c) * hh + iy) * ww + ix] * w.deq[o * K + (c * ks + ky) * ks + kx];
              }
          ref[((static_cast<int64_t>(img) * co + o) * hh + oy) * ww + ox] = acc;
        }
  check(std::string("norm_conv ") + sd::dtype_name(t) + " k" + std::to_string(ks) + " " + std::to_string(ci) + "->" +
            std::to_string(co) + " " + std::to_string(hh) + "x" + std::to_string(ww) + " g" + std::to_string(groups) +
            act_name(half),
        y, ref, kHalfOut);
}

}  // namespace

void run_gemm_tests() {
  test_split_plan();
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
  test_conv(sd::DType::F16, 2, 40, 20, 9, 7, 3, 1, 1, 0, true, kNhwc);
  test_conv(sd::DType::F16, 1, 32, 9, 11, 9, 3, 2, 0, 0, true, kNhwc);
  test_conv(sd::DType::F16, 1, 16, 9, 10, 7, 3, 2, 1, 0, true, kNhwc);
  test_conv(sd::DType::F16, 2, 8, 20, 5, 7, 3, 1, 1, 1, true, kNhwc);
  test_conv(sd::DType::F16, 2, 24, 130, 13, 17, 3, 1, 1, 0, false, kNhwc);
  // Quantized 3x3 weights repacked tap-major (SDNODE_CUDA_QTAPS): channel blocks of 32 in the k
  // order (C = 64: two), each k-tile one tap, a lane's scales from up to three blocks; with the
  // NHWC gather (taps past the image, stride 2, the upsampled read, M and N tails, f16 and f32
  // activations) and with ConvTapRows over the NCHW input, for inputs whose copy would be too large
  // (f16 weights too: chunks of 16 channels, k-tiles across taps at C = 48).
  test_conv(sd::DType::Q8_0, 2, 64, 20, 9, 9, 3, 1, 1, 0, true, kNhwc);
  test_conv(sd::DType::Q4_0, 2, 64, 20, 9, 7, 3, 1, 1, 0, true, kNhwc);
  test_conv(sd::DType::Q4_0, 1, 32, 9, 11, 9, 3, 2, 0, 0, false, kNhwc);
  test_conv(sd::DType::Q8_0, 1, 32, 130, 5, 7, 3, 1, 1, 1, true, kNhwc);
  test_conv(sd::DType::Q8_0, 2, 64, 20, 9, 9, 3, 1, 1, 0, true, kTaps);
  test_conv(sd::DType::Q4_0, 1, 32, 9, 10, 7, 3, 2, 1, 0, false, kTaps);
  test_conv(sd::DType::Q4_0, 2, 32, 20, 5, 7, 3, 1, 1, 1, true, kTaps);
  test_conv(sd::DType::F16, 2, 48, 20, 9, 7, 3, 1, 1, 0, true, kTaps);
  test_conv(sd::DType::F16, 1, 16, 9, 11, 9, 3, 2, 0, 0, false, kTaps);
  g_splits = 4;
  test_conv(sd::DType::Q4_0, 1, 64, 40, 5, 7, 3, 1, 1, 0, true, kNhwc);
  test_conv(sd::DType::Q8_0, 1, 32, 40, 5, 7, 3, 1, 1, 1, false, kTaps);
  g_splits = 1;
  // The multi-stage pipeline with register-staged (quantized) weights (SDNODE_CUDA_QPIPE): linears
  // with f16 activations (one and several k-tiles, M and N tails, stacked weights, GEGLU), 1x1 and
  // repacked 3x3 convs through NHWC, split-K (a split of 3 k-tiles: fewer than the stages).
  g_mixed_pipe = true;
  test_linear(sd::DType::Q8_0, 150, 137, 96, true);
  test_linear(sd::DType::Q4_0, 70, 130, 32, true);
  test_linear_n(sd::DType::Q4_0, 70, 66, 64, 2);
  test_linear_geglu(sd::DType::Q8_0, 70, 136, 96);
  test_conv(sd::DType::Q4_0, 2, 64, 20, 5, 6, 1, 1, 0, 0, true, kNhwc);
  test_conv(sd::DType::Q8_0, 2, 64, 20, 9, 9, 3, 1, 1, 0, true, kNhwc);
  test_conv(sd::DType::Q4_0, 1, 32, 130, 5, 7, 3, 1, 1, 1, false, kNhwc);
  g_splits = 4;
  test_linear(sd::DType::Q8_0, 70, 200, 288, true);
  test_conv(sd::DType::Q4_0, 1, 64, 40, 5, 7, 3, 1, 1, 0, true, kNhwc);
  g_splits = 1;
  g_mixed_pipe = false;
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
  test_conv(sd::DType::F16, 2, 40, 20, 9, 7, 3, 1, 1, 0, true, kNhwc);
  test_conv(sd::DType::Q8_0, 2, 32, 20, 9, 7, 3, 1, 1, 0, true);
  test_conv(sd::DType::F32, 2, 8, 20, 9, 9, 3, 1, 1);
  test_conv(sd::DType::Q4_0, 2, 32, 20, 9, 7, 3, 1, 1, 0, true, kNhwc);
  test_conv(sd::DType::Q8_0, 1, 32, 20, 9, 7, 3, 1, 1, 0, false, kTaps);
  g_splits = 4;
  test_conv(sd::DType::Q4_0, 1, 32, 40, 5, 7, 3, 1, 1, 0, true);
  test_conv(sd::DType::F16, 2, 40, 130, 5, 6, 3, 1, 1, 0, true, kNhwc);
  g_splits = 1;
  g_conv_add = false;
  // GroupNorm + SiLU in the NHWC copy (Backend::norm_conv2d): several images, groups of 16 and 8
  // channels, tiles of 32 channels spanning groups, a channel tail (C = 40), pixel tails, f16 and
  // f32 activations, f16 and repacked quantized weights, 1x1.
  test_norm_conv(sd::DType::F16, 2, 64, 20, 9, 7, 3, 4, true);
  test_norm_conv(sd::DType::F16, 1, 40, 24, 5, 13, 3, 5, false);
  test_norm_conv(sd::DType::Q8_0, 2, 64, 20, 6, 7, 3, 8, true);
  test_norm_conv(sd::DType::Q4_0, 1, 32, 20, 5, 6, 1, 4, true);
  // 1x1 through NHWC, any weight type (quantized: the double-buffered kernel with a cp.async A).
  test_conv(sd::DType::F16, 2, 40, 130, 5, 6, 1, 1, 0, 0, true, kNhwc);
  test_conv(sd::DType::Q4_0, 2, 64, 20, 5, 6, 1, 1, 0, 0, true, kNhwc);
  test_conv(sd::DType::Q8_0, 1, 96, 24, 7, 5, 1, 1, 0, 0, false, kNhwc);
  g_splits = 4;
  test_linear(sd::DType::F16, 70, 130, 288, true, true);  // linear_add through the split-K reduction
  test_conv(sd::DType::F16, 1, 40, 40, 5, 7, 3, 1, 1, 1, true, kNhwc);
  g_splits = 1;
  g_stages = 2;
  test_conv(sd::DType::F16, 2, 40, 20, 9, 7, 3, 1, 1, 0, true, kNhwc);
  test_linear(sd::DType::F16, 150, 137, 80, true);
  g_stages = 4;
}

}  // namespace emu_test
