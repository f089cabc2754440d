#include "fuse/inode_table.h"

#include <sys/stat.h>

#include <algorithm>
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
  MutexLock lock(&mu);
  fids.resize(static_cast<size_t>(channels));
}

std::shared_ptr<Inode> Inode::parent() const { return links.empty() ? nullptr : links.front().dir; }

void Inode::AddLink(std::shared_ptr<Inode> dir, const std::string& name) {
  RemoveLink(dir.get(), name);
  links.insert(links.begin(), Link{std::move(dir), name});
  if (links.size() > kMaxLinks) links.resize(kMaxLinks);
}

bool Inode::RemoveLink(const Inode* dir, const std::string& name) {
  auto it = std::find_if(links.begin(), links.end(),
                         [&](const Link& l) { return l.dir.get() == dir && l.name == name; });
  if (it == links.end()) return false;
  links.erase(it);
  return true;
}

bool Inode::is_dir() const { return S_ISDIR(file_type.load(std::memory_order_relaxed)); }

InodeTable::InodeTable(uint64_t root_qid_path, InodeRef root)
    : map_(root_qid_path), root_(std::move(root)) {}

InodeRef InodeTable::Get(uint64_t ino) const {
  if (ino == kRootIno) return root_;
  MutexLock lock(&mu_);
  auto it = by_ino_.find(ino);
  return it == by_ino_.end() ? nullptr : it->second.inode;
}

InodeRef InodeTable::FindByQidPath(uint64_t qid_path) const {
  if (qid_path == root_->qid_path) return root_;
  MutexLock lock(&mu_);
  auto q = by_qid_.find(qid_path);
  if (q == by_qid_.end()) return nullptr;
  auto it = by_ino_.find(q->second);
  return it == by_ino_.end() ? nullptr : it->second.inode;
}

uint64_t InodeTable::NewNodeId(uint64_t qid_path) {
  // st_ino's number when free (handy when reading traces), else a spare.
  uint64_t id = map_.ToIno(qid_path);
  while (id == kRootIno || id == 0 || by_ino_.contains(id)) id = next_spare_id_++;
  return id;
}

InodeRef InodeTable::Retire(uint64_t qid_path) {
  if (qid_path == root_->qid_path) return nullptr;
  MutexLock lock(&mu_);
  auto q = by_qid_.find(qid_path);
  if (q == by_qid_.end()) return nullptr;
  InodeRef out;
  if (auto it = by_ino_.find(q->second); it != by_ino_.end()) {
    out = it->second.inode;
    out->removed.store(true, std::memory_order_relaxed);
  }
  by_qid_.erase(q);
  return out;
}

InodeRef InodeTable::Forget(uint64_t ino, uint64_t n) {
  if (ino == kRootIno) return nullptr;
  MutexLock lock(&mu_);
  auto it = by_ino_.find(ino);
  if (it == by_ino_.end()) return nullptr;
  if (it->second.nlookup > n) {
    it->second.nlookup -= n;
    return nullptr;
  }
  InodeRef out = std::move(it->second.inode);
  by_ino_.erase(it);
  if (auto q = by_qid_.find(out->qid_path); q != by_qid_.end() && q->second == ino) {
    by_qid_.erase(q);
  }
  return out;
}

std::vector<InodeRef> InodeTable::Snapshot() const {
  std::vector<InodeRef> out;
  MutexLock lock(&mu_);
  out.reserve(by_ino_.size() + 1);
  out.push_back(root_);
  for (const auto& [ino, e] : by_ino_) out.push_back(e.inode);
  return out;
}

std::vector<InodeRef> InodeTable::Clear() {
  std::vector<InodeRef> out;
  MutexLock lock(&mu_);
  out.reserve(by_ino_.size());
  for (auto& [ino, e] : by_ino_) out.push_back(std::move(e.inode));
  by_ino_.clear();
  by_qid_.clear();
  return out;
}

size_t InodeTable::size() const {
  MutexLock lock(&mu_);
  return by_ino_.size();
}

}  // namespace p9::fuse
