#include "worker/pipeline/state_releaser.h"

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <mutex>
#include <thread>

#include "spdlog/spdlog.h"

namespace slipstream {

struct StateReleaser::Impl {
  struct Item {
    std::unique_ptr<TaskState> state;
    std::string directory;
    std::string what;
  };
  std::mutex mu;
  std::condition_variable cv;
  std::deque<Item> queue;
  int64_t hold_ms = 0;
  bool held = false;  // a released state waits for Resume() (or hold_ms)
  std::chrono::steady_clock::time_point held_since;
  bool busy = false;
  bool stopping = false;
  std::thread thread;

  void Run() {
    // Freeing is not urgent: the next attempt's restore goes first.
    setpriority(PRIO_PROCESS, static_cast<id_t>(syscall(SYS_gettid)), 10);
    std::unique_lock lock(mu);
    for (;;) {
      cv.wait(lock, [&] { return stopping || !queue.empty(); });
      if (queue.empty()) return;  // stopping, nothing left
      if (held && !stopping) {
        cv.wait_until(lock, held_since + std::chrono::milliseconds(hold_ms), [&] { return stopping || !held; });
        held = false;
      }
      Item item = std::move(queue.front());
      queue.pop_front();
      busy = true;
      lock.unlock();
      const auto begin = std::chrono::steady_clock::now();
      item.state.reset();
      std::error_code ec;
      std::filesystem::remove_all(item.directory, ec);
      if (ec) spdlog::warn("cannot remove the local state of {} at {}: {}", item.what, item.directory, ec.message());
      spdlog::info("freed the state of {} in the background in {} ms", item.what,
                   std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - begin)
                       .count());
      lock.lock();
      busy = false;
      cv.notify_all();
    }
  }
};

StateReleaser::StateReleaser(int64_t hold_ms) : impl_(std::make_unique<Impl>()) {
  impl_->hold_ms = hold_ms;
  impl_->thread = std::thread([impl = impl_.get()] { impl->Run(); });
}

StateReleaser::~StateReleaser() {
  {
    std::lock_guard lock(impl_->mu);
    impl_->stopping = true;
  }
  impl_->cv.notify_all();
  impl_->thread.join();
}

void StateReleaser::Release(std::unique_ptr<TaskState> state, std::string directory, std::string what) {
  {
    std::lock_guard lock(impl_->mu);
    impl_->queue.push_back(Impl::Item{std::move(state), std::move(directory), std::move(what)});
    impl_->held = true;
    impl_->held_since = std::chrono::steady_clock::now();
  }
  impl_->cv.notify_all();
}

void StateReleaser::Resume() {
  {
    std::lock_guard lock(impl_->mu);
    impl_->held = false;
  }
  impl_->cv.notify_all();
}

void StateReleaser::Wait() {
  std::unique_lock lock(impl_->mu);
  impl_->cv.wait(lock, [&] { return impl_->queue.empty() && !impl_->busy; });
}

}  // namespace slipstream
