#include "watchdog.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <thread>

#include "status.h"

namespace nbp::rt {
namespace {

using Clock = std::chrono::steady_clock;

std::atomic<const char*> g_stage{"starting"};
std::atomic<int64_t> g_since_ns{0};
std::mutex g_mutex;
std::condition_variable g_cv;
bool g_stop = false;
std::thread g_thread;

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count();
}

void watch(double limit_s) {
  const auto limit_ns = static_cast<int64_t>(limit_s * 1e9);
  // checks a few times per limit, at most once a second
  const auto period = std::chrono::milliseconds(static_cast<int64_t>(std::min(1000.0, limit_s * 250.0)) + 1);
  std::unique_lock<std::mutex> lock(g_mutex);
  while (!g_stop) {
    g_cv.wait_for(lock, period);
    if (g_stop) break;
    const int64_t waited = now_ns() - g_since_ns.load();
    if (waited > limit_ns) {
      std::fprintf(stderr, "run_engine: error: %s has not finished in %.0f s (--step-timeout %g): the backend or device "
                   "is stuck\n", g_stage.load(), waited / 1e9, limit_s);
      std::fflush(stderr);
      std::fflush(stdout);
      std::_Exit(static_cast<int>(ExitCode::kRuntime));
    }
  }
}

// The tests' stand-in for a hung backend (watchdog.h).
void stall_if_asked(const char* stage) {
  static const char* const stall = std::getenv("NBP_RUN_ENGINE_STALL");
  if (stall != nullptr && std::strcmp(stall, stage) == 0) {
    for (;;) std::this_thread::sleep_for(std::chrono::hours(1));
  }
}

}  // namespace

void watchdog_enter(const char* stage) {
  g_since_ns.store(now_ns());
  g_stage.store(stage);
  stall_if_asked(stage);
}

void watchdog_start(double limit_s) {
  if (limit_s <= 0 || g_thread.joinable()) return;
  g_since_ns.store(now_ns());
  g_thread = std::thread(watch, limit_s);
}

void watchdog_stop() {
  {
    std::lock_guard<std::mutex> lock(g_mutex);
    g_stop = true;
  }
  g_cv.notify_all();
  if (g_thread.joinable()) g_thread.join();
}

}  // namespace nbp::rt
