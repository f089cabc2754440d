// Registered message buffers, with the current owner (CPU or NIC) carried in
// the type of the handle: a CpuBuffer may be read and written; a buffer
// handed to the NIC is represented only by its work-request id until its
// completion gives it back. A buffer belongs to the NIC from ibv_post_* until
// its completion is polled, and no code path can touch its bytes in between.
#ifndef P9_RDMA_BUFFER_POOL_H_
#define P9_RDMA_BUFFER_POOL_H_

#include <infiniband/verbs.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "client/mutex.h"
#include "rdma/resources.h"

namespace p9::rdma {

// A buffer the CPU owns. Move-only; it stops existing as a CpuBuffer when it
// is handed to the NIC (BufferPool::HandToNic consumes it).
class CpuBuffer {
 public:
  CpuBuffer(CpuBuffer&& o) noexcept : p_(o.p_), cap_(o.cap_), index_(o.index_) { o.p_ = nullptr; }
  CpuBuffer& operator=(CpuBuffer&& o) noexcept {
    p_ = o.p_;
    cap_ = o.cap_;
    index_ = o.index_;
    o.p_ = nullptr;
    return *this;
  }
  CpuBuffer(const CpuBuffer&) = delete;
  CpuBuffer& operator=(const CpuBuffer&) = delete;

  absl::Span<uint8_t> bytes() { return {p_, cap_}; }
  absl::Span<const uint8_t> bytes(uint32_t len) const { return {p_, len}; }
  uint32_t capacity() const { return cap_; }
  uint32_t index() const { return index_; }

 private:
  friend class BufferPool;
  CpuBuffer(uint8_t* p, uint32_t cap, uint32_t index) : p_(p), cap_(cap), index_(index) {}
  uint8_t* p_;
  uint32_t cap_;
  uint32_t index_;
};

// What posting needs of a buffer the NIC now owns: its work-request id and
// scatter/gather entry. Holds no pointer the CPU could write through.
struct NicPosting {
  uint64_t wr_id;
  ibv_sge sge;
};

// `count` buffers of `size` bytes in one page-aligned arena, registered as a
// single memory region. Thread-safe.
class BufferPool {
 public:
  // `pool_id` (0..255) goes into the top byte of every wr_id so a completion
  // can be traced to its pool even when its opcode is not valid (error
  // completions).
  static absl::StatusOr<std::unique_ptr<BufferPool>> Create(uint8_t pool_id, uint32_t count,
                                                            uint32_t size);
  ~BufferPool();

  // Registers the arena with `pd`. Until then lkey is 0 (fine for tests).
  absl::Status Register(ibv_pd* pd);
  uint32_t count() const { return count_; }
  uint32_t size() const { return size_; }
  size_t arena_bytes() const { return size_t{count_} * size_; }
  static uint8_t PoolOf(uint64_t wr_id) { return static_cast<uint8_t>(wr_id >> 56); }

  // A free buffer for the CPU, or nullopt if every buffer is in use.
  std::optional<CpuBuffer> TakeFree();
  // Returns a buffer the CPU no longer needs.
  void ReturnFree(CpuBuffer&& b);
  // Gives the buffer to the NIC: `length` bytes of it will be sent, or
  // received into. The caller must post the result (or Reclaim it at once
  // if posting fails).
  NicPosting HandToNic(CpuBuffer&& b, uint32_t length);
  // The buffer of a completed work request, back in CPU hands. Fails for an
  // id this pool did not hand out or that is not with the NIC (a duplicate
  // completion), which would otherwise let two owners touch one buffer.
  absl::StatusOr<CpuBuffer> Reclaim(uint64_t wr_id);
  // Buffers the NIC owns right now.
  int nic_owned() const;

 private:
  enum class Owner : uint8_t { kFree, kCpu, kNic };
  BufferPool(uint8_t pool_id, uint32_t count, uint32_t size, uint8_t* arena);

  const uint8_t pool_id_;
  const uint32_t count_;
  const uint32_t size_;
  uint8_t* const arena_;
  MrPtr mr_;  // set once by Register(), before any buffer is posted

  mutable Mutex mu_;
  std::vector<Owner> owner_ ABSL_GUARDED_BY(mu_);
  std::vector<uint32_t> free_ ABSL_GUARDED_BY(mu_);
  int nic_owned_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace p9::rdma

#endif  // P9_RDMA_BUFFER_POOL_H_
