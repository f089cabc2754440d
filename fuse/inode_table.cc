#include "fuse/inode_table.h"

#include <sys/stat.h>

#include <utility>

namespace p9::fuse {

uint64_t InoMap::ToIno(uint64_t qid_path) const {
  if (qid_path == root_) return kRootIno;
  if (qid_path == kRootIno) return root_ == 0 ? kSpare : root_;
  if (qid_path == 0) return kSpare;
  return qid_path;
}

uint64_t InoMap::ToQidPath(uint64_t ino) const {
  if (ino == kRootIno) return root_;
  if (ino == kSpare) return root_ == 0 ? kRootIno : 0;
  if (ino == root_) return kRootIno;
  return ino;
}

Inode::Inode(uint64_t ino_in, uint64_t qid_path_in, uint32_t file_type_in, int channels)
    : ino(ino_in), qid_path(qid_path_in), file_type(file_type_in & S_IFMT) {
  absl::MutexLock lock(&mu);
  fids.resize(static_cast<size_t>(channels));
}

bool Inode::is_dir() const { return S_ISDIR(file_type.load(std::memory_order_relaxed)); }

InodeTable::InodeTable(uint64_t root_qid_path, InodeRef root)
    : map_(root_qid_path), root_(std::move(root)) {}

InodeRef InodeTable::Get(uint64_t ino) const {
  if (ino == kRootIno) return root_;
  absl::MutexLock lock(&mu_);
  auto it = by_ino_.find(ino);
  return it == by_ino_.end() ? nullptr : it->second.inode;
}

InodeRef InodeTable::FindByQidPath(uint64_t qid_path) const { return Get(map_.ToIno(qid_path)); }

InodeRef InodeTable::Forget(uint64_t ino, uint64_t n) {
  if (ino == kRootIno) return nullptr;
  absl::MutexLock lock(&mu_);
  auto it = by_ino_.find(ino);
  if (it == by_ino_.end()) return nullptr;
  if (it->second.nlookup > n) {
    it->second.nlookup -= n;
    return nullptr;
  }
  InodeRef out = std::move(it->second.inode);
  by_ino_.erase(it);
  return out;
}

std::vector<InodeRef> InodeTable::Snapshot() const {
  std::vector<InodeRef> out;
  absl::MutexLock lock(&mu_);
  out.reserve(by_ino_.size() + 1);
  out.push_back(root_);
  for (const auto& [ino, e] : by_ino_) out.push_back(e.inode);
  return out;
}

std::vector<InodeRef> InodeTable::Clear() {
  std::vector<InodeRef> out;
  absl::MutexLock lock(&mu_);
  out.reserve(by_ino_.size());
  for (auto& [ino, e] : by_ino_) out.push_back(std::move(e.inode));
  by_ino_.clear();
  return out;
}

size_t InodeTable::size() const {
  absl::MutexLock lock(&mu_);
  return by_ino_.size();
}

}  // namespace p9::fuse
