// The host emulation's attention, normalization and layout cases (tests/tc_emulation.cpp): the
// flash kernel at every head-dim instantiation, the wide-head path and its chunk plan, the split
// GroupNorm and the tiled transpose, with f32 and f16 activations.
#include "tc_emu_harness.h"

#include "cuda/attention_tc_kernel.cuh"
#include "cuda/attention_wide_kernel.cuh"
#include "cuda/norm_split_kernel.cuh"

namespace emu_test {
namespace {

// Backend::transpose12 ([B, A, C] -> [B, C, A]) through the NHWC copy's kernel with Out = T:
// tails on both tile dims, several batches.
template <class T>
void test_transpose12(int B, int A, int C) {
  const auto x = randn(static_cast<size_t>(B) * A * C);
  std::vector<T> xt(x.size()), y(x.size());
  for (size_t i = 0; i < x.size(); ++i) xt[i] = static_cast<T>(x[i]);
  const unsigned gx = static_cast<unsigned>((C + 31) / 32), gy = static_cast<unsigned>((A + 31) / 32);
  run_grid(gx, gy, sd::cuda::kTransposeThreads, [&] { sd::cuda::transpose_kernel<T, T>(xt.data(), y.data(), A, C, sd::cuda::PlainMap{}); },
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
  const std::vector<double> ref = group_norm_ref(x, C, plane, groups, gamma, beta, silu);
  check("group_norm split " + std::to_string(N) + "x" + std::to_string(C) + "x" + std::to_string(H) + "x" +
            std::to_string(Wd) + " g" + std::to_string(groups) + (silu ? " silu" : "") + act_name(half),
        y, ref, half ? kHalfOut : 1e-5);
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

void run_attention_norm_tests() {
  test_wide_plan();
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
  test_transpose12<float>(2, 70, 33);
  test_transpose12<__half>(3, 40, 65);
  test_attention<48>(2, 70, 77, 2, 40, false, true);
  test_attention<80>(2, 33, 200, 2, 80, false, true);
  test_attention<160>(1, 130, 130, 1, 160, true, true);
  test_attention_wide(1, 300, 150, 1, 192, false, true, 150 * 6 * 128);
  test_attention_wide(2, 130, 130, 2, 200, true, true, 130 * 6 * 128);
  test_group_norm(2, 64, 24, 24, 32, true, true);
  test_group_norm(1, 32, 33, 35, 8, false, true);
}

}  // namespace emu_test
