#include "rdma/buffer_pool.h"

#include <unistd.h>

#include <cstdlib>

#include "absl/strings/str_cat.h"

namespace p9::rdma {

absl::StatusOr<std::unique_ptr<BufferPool>> BufferPool::Create(uint8_t pool_id, uint32_t count,
                                                               uint32_t size) {
  if (count == 0 || size == 0) return absl::InvalidArgumentError("empty buffer pool");
  size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  size_t bytes = (size_t{count} * size + page - 1) / page * page;
  void* arena = std::aligned_alloc(page, bytes);
  if (arena == nullptr) {
    return absl::ResourceExhaustedError(
        absl::StrCat("cannot allocate ", bytes, " bytes of buffers"));
  }
  return std::unique_ptr<BufferPool>(
      new BufferPool(pool_id, count, size, static_cast<uint8_t*>(arena)));
}

BufferPool::BufferPool(uint8_t pool_id, uint32_t count, uint32_t size, uint8_t* arena)
    : pool_id_(pool_id), count_(count), size_(size), arena_(arena) {
  MutexLock lock(&mu_);
  owner_.assign(count, Owner::kFree);
  for (uint32_t i = count; i > 0; --i) free_.push_back(i - 1);
}

BufferPool::~BufferPool() {
  // The memory region goes before the memory: the owner of the pool destroys
  // the QP first, so by now the NIC has no access to any buffer.
  mr_.reset();
  std::free(arena_);
}

absl::Status BufferPool::Register(ibv_pd* pd) {
  absl::StatusOr<MrPtr> mr = RegisterMemory(pd, arena_, arena_bytes());
  if (!mr.ok()) return mr.status();
  mr_ = *std::move(mr);
  return absl::OkStatus();
}

std::optional<CpuBuffer> BufferPool::TakeFree() {
  MutexLock lock(&mu_);
  if (free_.empty()) return std::nullopt;
  uint32_t i = free_.back();
  free_.pop_back();
  owner_[i] = Owner::kCpu;
  return CpuBuffer(arena_ + size_t{i} * size_, size_, i);
}

void BufferPool::ReturnFree(CpuBuffer&& b) {
  MutexLock lock(&mu_);
  owner_[b.index()] = Owner::kFree;
  free_.push_back(b.index());
  b.p_ = nullptr;
}

NicPosting BufferPool::HandToNic(CpuBuffer&& b, uint32_t length) {
  NicPosting p;
  p.wr_id = (uint64_t{pool_id_} << 56) | b.index();
  p.sge.addr = reinterpret_cast<uintptr_t>(b.p_);
  p.sge.length = length;
  p.sge.lkey = mr_ ? mr_->lkey : 0;
  MutexLock lock(&mu_);
  owner_[b.index()] = Owner::kNic;
  ++nic_owned_;
  b.p_ = nullptr;
  return p;
}

absl::StatusOr<CpuBuffer> BufferPool::Reclaim(uint64_t wr_id) {
  uint64_t i = wr_id & ((uint64_t{1} << 56) - 1);
  if (PoolOf(wr_id) != pool_id_ || i >= count_) {
    return absl::InternalError(
        absl::StrCat("work request id ", wr_id, " is not from pool ", pool_id_));
  }
  MutexLock lock(&mu_);
  if (owner_[i] != Owner::kNic) {
    return absl::InternalError(absl::StrCat("completion for buffer ", i, " the NIC does not own"));
  }
  owner_[i] = Owner::kCpu;
  --nic_owned_;
  return CpuBuffer(arena_ + i * size_, size_, static_cast<uint32_t>(i));
}

int BufferPool::nic_owned() const {
  MutexLock lock(&mu_);
  return nic_owned_;
}

}  // namespace p9::rdma
