// Benchmarks for attention and the memory-bound row ops (not tests). They run only when the
// SDNODE_BENCH environment variable is set:  SDNODE_BENCH=1 ./sdcore_tests bench_misc
// (SDNODE_BENCH_THREADS=n overrides the thread count, default: physical cores).
// Attention is reported in GFLOP/s (4 * Nq * Nk * D * heads * batch) and as a fraction of the
// measured FMA peak of the same ISA level with the same thread count; row ops in GB/s (read + write).
// SDNODE_BENCH_CLOCK=cpu times with the process CPU time per thread (a shared, busy machine),
// SDNODE_BENCH_REPS sets the runs per median (default 5), SDNODE_BENCH_ATTN_ONLY=1 skips the row ops.
#include <time.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#if defined(__x86_64__)
#include <immintrin.h>
#elif defined(__aarch64__)
#include <arm_neon.h>
#endif

#include "core/threadpool.h"
#include "tests/misc_test_util.h"
#include "tests/test.h"

using misctest::view;

namespace {

bool cpu_clock() {
  const char* c = std::getenv("SDNODE_BENCH_CLOCK");
  return c && std::strcmp(c, "cpu") == 0;
}
int g_threads = 1;

// Wall seconds, or process CPU seconds divided by the thread count with SDNODE_BENCH_CLOCK=cpu
// (the pool blocks rather than spins, so time-slicing and idle waits are excluded).
double now() {
  timespec ts;
  clock_gettime(cpu_clock() ? CLOCK_PROCESS_CPUTIME_ID : CLOCK_MONOTONIC, &ts);
  return (ts.tv_sec + ts.tv_nsec * 1e-9) / (cpu_clock() ? g_threads : 1);
}

int bench_reps(int dflt) {
  const char* r = std::getenv("SDNODE_BENCH_REPS");
  return r ? std::max(1, std::atoi(r)) : dflt;
}

// Median seconds of `reps` runs after one warm-up.
template <typename F>
double median_time(int reps, F fn) {
  fn();
  std::vector<double> t;
  for (int i = 0; i < reps; ++i) {
    const double t0 = now();
    fn();
    t.push_back(now() - t0);
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

// Independent FMA chains (more than latency x ports) so the loop runs at the FMA throughput.
#if defined(__x86_64__)
__attribute__((target("avx2,fma"))) float fma_chains_avx2(int64_t iters) {
  __m256 acc[12];
  for (int j = 0; j < 12; ++j) acc[j] = _mm256_set1_ps(static_cast<float>(j));
  const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-6f);
  for (int64_t i = 0; i < iters; ++i)
    for (int j = 0; j < 12; ++j) acc[j] = _mm256_fmadd_ps(acc[j], a, b);
  float s = 0;
  for (int j = 0; j < 12; ++j) s += _mm256_cvtss_f32(acc[j]);
  return s;
}
__attribute__((target("avx512f"))) float fma_chains_avx512(int64_t iters) {
  __m512 acc[16];
  for (int j = 0; j < 16; ++j) acc[j] = _mm512_set1_ps(static_cast<float>(j));
  const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-6f);
  for (int64_t i = 0; i < iters; ++i)
    for (int j = 0; j < 16; ++j) acc[j] = _mm512_fmadd_ps(acc[j], a, b);
  float s = 0;
  for (int j = 0; j < 16; ++j) s += _mm512_cvtss_f32(acc[j]);
  return s;
}
#endif

// Peak GFLOP/s of `threads` threads running FMA chains at the given level (0 if unknown).
double fma_peak(sd::Isa isa, int threads) {
  int lanes = 0, chains = 0;
  float (*fn)(int64_t) = nullptr;
#if defined(__x86_64__)
  if (isa == sd::Isa::Avx2) { fn = fma_chains_avx2; lanes = 8; chains = 12; }
  if (isa == sd::Isa::Avx512) { fn = fma_chains_avx512; lanes = 16; chains = 16; }
#endif
  if (!fn) return 0.0;
  sd::ThreadPool pool(threads);
  const int64_t iters = 20000000;
  volatile float sink = 0;
  const double t = median_time(3, [&] { pool.run(threads, [&](int64_t, int) { sink = sink + fn(iters); }); });
  return 2.0 * lanes * chains * static_cast<double>(iters) * threads / t / 1e9;
}

void bench_attention(sd::Backend& be, const char* what, int64_t B, int64_t Nq, int64_t Nk, int64_t H,
                     int64_t D, double peak) {
  sdtest::Rng rng(1);
  auto q = rng.vec(static_cast<size_t>(B * Nq * H * D)), k = rng.vec(static_cast<size_t>(B * Nk * H * D));
  auto v = rng.vec(k.size());
  std::vector<float> y(q.size());
  auto tq = view(q, {B, Nq, H * D}), tk = view(k, {B, Nk, H * D}), tv = view(v, {B, Nk, H * D});
  auto ty = view(y, {B, Nq, H * D});
  const double t = median_time(bench_reps(5), [&] { be.attention(ty, tq, tk, tv, static_cast<int>(H), false); });
  const double gf = 4.0 * Nq * Nk * D * H * B / t / 1e9;
  std::printf("  attention %-28s %8.2f ms %7.1f GFLOP/s", what, t * 1e3, gf);
  if (peak > 0) std::printf("  %5.1f %% of FMA peak", 100.0 * gf / peak);
  std::printf("\n");
}

template <typename F>
void bench_bytes(const char* what, double bytes, F fn) {
  const double t = median_time(bench_reps(5), fn);
  std::printf("  %-38s %8.3f ms %7.1f GB/s\n", what, t * 1e3, bytes / t / 1e9);
}

}  // namespace

SD_TEST(bench_misc) {
  if (!std::getenv("SDNODE_BENCH")) return;
  const char* th = std::getenv("SDNODE_BENCH_THREADS");
  const int threads = th ? std::max(1, std::atoi(th)) : sd::default_thread_count();
  g_threads = threads;
  const bool attn_only = std::getenv("SDNODE_BENCH_ATTN_ONLY") != nullptr;
  misctest::IsaRestore restore;
  for (sd::Isa isa : {sd::Isa::Avx2, sd::Isa::Avx512, sd::Isa::Neon, sd::Isa::Dotprod}) {
    if (!sd::isa_force(isa)) continue;
    const double peak = fma_peak(isa, threads);
    std::printf("%s, %d threads, measured FMA peak %.1f GFLOP/s\n", sd::isa_name(isa), threads, peak);
    auto be = sd::make_cpu_backend(threads);
    bench_attention(*be, "self 2x4096 8 heads x 40", 2, 4096, 4096, 8, 40, peak);
    bench_attention(*be, "self 2x1024 8 heads x 80", 2, 1024, 1024, 8, 80, peak);
    bench_attention(*be, "self 2x256 8 heads x 160", 2, 256, 256, 8, 160, peak);
    bench_attention(*be, "cross 2x4096x77 8 heads x 40", 2, 4096, 77, 8, 40, peak);
    bench_attention(*be, "vae 1x4096 1 head x 512", 1, 4096, 4096, 1, 512, peak);
    if (attn_only) {
      sd::isa_force(sd::isa_best());
      continue;
    }

    sdtest::Rng rng(2);
    const int64_t N = 2, C = 320, HW = 64 * 64;
    auto x = rng.vec(static_cast<size_t>(N * C * HW)), y = std::vector<float>(x.size());
    auto g = rng.vec(static_cast<size_t>(C)), bb = rng.vec(static_cast<size_t>(C));
    auto tx = view(x, {N, C, 64, 64}), ty = view(y, {N, C, 64, 64}), tg = view(g, {C}), tb = view(bb, {C});
    const double rw = 2.0 * x.size() * sizeof(float);
    bench_bytes("group_norm+silu 2x320x64x64", rw, [&] { be->group_norm(ty, tx, 32, tg, tb, 1e-5f, true); });
    auto tx2 = view(x, {N * HW, C}), ty2 = view(y, {N * HW, C});
    bench_bytes("layer_norm 8192x320", rw, [&] { be->layer_norm(ty2, tx2, tg, tb, 1e-5f); });
    auto ta = view(x, {N, C, 64, 64}), tbias = view(g, {1, C, 1, 1});
    bench_bytes("add [2,320,64,64]+[1,320,1,1]", rw, [&] { be->add(ty, ta, tbias); });
    bench_bytes("gelu 2x320x64x64", rw, [&] { be->unary(ty, tx, sd::Unary::Gelu); });
    auto tgx = view(x, {N * HW / 2, 2 * C}), tgy = view(y, {N * HW / 2, C});
    bench_bytes("geglu 4096x(2x320)", 1.5 * x.size() * sizeof(float), [&] { be->geglu(tgy, tgx); });
    bench_bytes("softmax 8192 rows of 320", rw, [&] { be->softmax(ty2, tx2); });
    sd::isa_force(sd::isa_best());
  }
}
