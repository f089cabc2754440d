#include "client/spin.h"

#include <thread>

namespace p9 {
namespace {

// Relaxed: a budget, not a guard; nothing is published through it.
std::atomic<int> g_spinners{0};

int MaxSpinners() {
  static const int n = [] {
    const int cpus = static_cast<int>(std::thread::hardware_concurrency());
    return cpus > 1 ? cpus - 1 : 0;
  }();
  return n;
}

}  // namespace

bool TakeSpinSlot() {
  const int max = MaxSpinners();
  int cur = g_spinners.load(std::memory_order_relaxed);
  while (cur < max) {
    if (g_spinners.compare_exchange_weak(cur, cur + 1, std::memory_order_relaxed)) return true;
  }
  return false;
}

void ReturnSpinSlot() { g_spinners.fetch_sub(1, std::memory_order_relaxed); }

}  // namespace p9
