// A persistent pool: workers are created once and parked between jobs, so no op creates threads.
// The calling thread takes part in every job. Jobs are split into tasks the caller defines, so a
// kernel that writes each output from one task gives the same bits for any thread count.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <type_traits>
#include <utility>
#include <mutex>
#include <thread>
#include <vector>

namespace sd {

// A non-owning reference to a callable: unlike std::function it never allocates, so handing a
// capturing lambda to the pool costs nothing per op. The callable must outlive the call.
template <typename Sig> class FunctionRef;
template <typename R, typename... A> class FunctionRef<R(A...)> {
 public:
  template <typename F, typename = std::enable_if_t<!std::is_same_v<std::decay_t<F>, FunctionRef>>>
  FunctionRef(F&& f) noexcept  // NOLINT: implicit on purpose, like std::function
      : obj_(const_cast<void*>(static_cast<const void*>(std::addressof(f)))),
        call_([](void* o, A... a) -> R { return (*static_cast<std::remove_reference_t<F>*>(o))(std::forward<A>(a)...); }) {}
  R operator()(A... a) const { return call_(obj_, std::forward<A>(a)...); }

 private:
  void* obj_;
  R (*call_)(void*, A...);
};

class ThreadPool {
 public:
  // n_threads counts the caller: 1 means run everything on the calling thread.
  explicit ThreadPool(int n_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }

  // Calls fn(task, thread) for task in [0, n_tasks), thread in [0, size()). Tasks are handed out
  // dynamically. Blocks until all are done. Not re-entrant: fn must not call run() on this pool.
  // If fn throws, the first exception is rethrown on the caller after all tasks finish.
  void run(int64_t n_tasks, FunctionRef<void(int64_t task, int thread)> fn);

  // Convenience: splits [0, n) into chunks of at least `grain` and calls fn(begin, end, thread).
  void parallel_for(int64_t n, int64_t grain, FunctionRef<void(int64_t begin, int64_t end, int thread)> fn);

 private:
  void worker(int index);
  void work(int thread);

  int n_threads_;
  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable cv_start_, cv_done_;
  uint64_t generation_ = 0;
  bool stop_ = false;
  const FunctionRef<void(int64_t, int)>* fn_ = nullptr;
  int64_t n_tasks_ = 0;
  std::atomic<int64_t> next_{0};
  std::atomic<int> active_{0};
  std::exception_ptr error_;
  std::mutex error_mu_;
};

// Default thread count: physical cores.
int default_thread_count();

}  // namespace sd
