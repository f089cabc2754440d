#include "client/trace.h"

#include <cctype>
#include <string_view>
#include <tuple>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/codec.h"
#include "client/messages.h"
#include "client/protocol.h"

namespace p9 {
namespace {

// Walk lists and directory listings can be long; a trace line shows this
// many elements and counts the rest.
constexpr size_t kMaxListed = 16;

// A name from the peer may hold anything; keep the line one line, readable.
std::string Escaped(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (c > ' ' && c < 0x7f && c != '\\') {
      out.push_back(static_cast<char>(c));
    } else {
      absl::StrAppendFormat(&out, "\\x%02x", c);
    }
  }
  return out.empty() ? "\"\"" : out;
}

std::string QidText(const Qid& q) { return absl::StrFormat("%x.%x.%x", q.type, q.path, q.version); }

// One field, appended as " name value"; overloads by wire type.
void Field(std::string* out, std::string_view name, uint64_t v) {
  if (name == "mode") {
    absl::StrAppendFormat(out, " %s 0%o", name, v);
  } else if (name == "valid" || name == "request_mask" || name == "flags") {
    absl::StrAppendFormat(out, " %s 0x%x", name, v);
  } else {
    absl::StrAppendFormat(out, " %s %u", name, v);
  }
}
void Field(std::string* out, std::string_view name, uint8_t v) {
  Field(out, name, static_cast<uint64_t>(v));
}
void Field(std::string* out, std::string_view name, uint16_t v) {
  Field(out, name, static_cast<uint64_t>(v));
}
void Field(std::string* out, std::string_view name, uint32_t v) {
  Field(out, name, static_cast<uint64_t>(v));
}
void Field(std::string* out, std::string_view name, const std::string& v) {
  absl::StrAppend(out, " ", absl::string_view(name.data(), name.size()), " ", Escaped(v));
}
void Field(std::string* out, std::string_view name, const Qid& v) {
  absl::StrAppend(out, " ", absl::string_view(name.data(), name.size()), " ", QidText(v));
}
// Payloads: their size only.
void Field(std::string* out, std::string_view, const Bytes& v) {
  absl::StrAppend(out, " count ", v.data.size());
}
void Field(std::string* out, std::string_view, const WalkNames& v) {
  absl::StrAppend(out, " nwname ", v.names.size());
  for (size_t i = 0; i < v.names.size() && i < kMaxListed; ++i) {
    absl::StrAppend(out, " wname[", i, "] ", Escaped(v.names[i]));
  }
}
void Field(std::string* out, std::string_view, const WalkQids& v) {
  absl::StrAppend(out, " nwqid ", v.qids.size());
  for (size_t i = 0; i < v.qids.size() && i < kMaxListed; ++i) {
    absl::StrAppend(out, " wqid[", i, "] ", QidText(v.qids[i]));
  }
}
// A listing: how many entries and where the next Treaddir starts, plus the
// first names (the whole listing would make lines of kilobytes).
void Field(std::string* out, std::string_view, const DirentList& v) {
  absl::StrAppend(out, " entries ", v.entries.size());
  if (!v.entries.empty()) absl::StrAppend(out, " next_offset ", v.entries.back().offset);
  for (size_t i = 0; i < v.entries.size() && i < kMaxListed; ++i) {
    absl::StrAppend(out, " name[", i, "] ", Escaped(v.entries[i].name));
  }
  if (v.entries.size() > kMaxListed) absl::StrAppend(out, " ...");
}

// "fid, newfid, wnames" → {"fid", "newfid", "wnames"}.
std::vector<std::string_view> SplitNames(std::string_view list) {
  std::vector<std::string_view> names;
  while (!list.empty()) {
    size_t comma = list.find(',');
    std::string_view n = list.substr(0, comma);
    while (!n.empty() && n.front() == ' ') n.remove_prefix(1);
    while (!n.empty() && n.back() == ' ') n.remove_suffix(1);
    names.push_back(n);
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return names;
}

template <typename M>
void AppendFields(std::string* out, const M& m) {
  const std::vector<std::string_view> names = SplitNames(M::kFieldNames);
  std::apply(
      [&](const auto&... f) {
        size_t i = 0;
        (Field(out, names[i++], f), ...);
      },
      m.Fields());
}

uint32_t Le32(const uint8_t* p) { return p[0] | p[1] << 8 | p[2] << 16 | uint32_t{p[3]} << 24; }

}  // namespace

std::string FormatMessage(absl::Span<const uint8_t> msg) {
  if (msg.size() < kHeaderSize) {
    return absl::StrCat("malformed message: ", msg.size(), " bytes, shorter than a 9P header");
  }
  const uint32_t size = Le32(msg.data());
  const uint8_t type = msg[4];
  const uint16_t tag = static_cast<uint16_t>(msg[5] | msg[6] << 8);
  std::string head = absl::AsciiStrToUpper(MsgTypeName(type));
  if (head == "UNKNOWN") head = absl::StrCat("type ", type);
  absl::StrAppend(&head, " tag ", tag == kNoTag ? std::string("NOTAG") : absl::StrCat(tag));
  if (size != msg.size()) {
    return absl::StrCat(head, " malformed: size field ", size, ", message ", msg.size(), " bytes");
  }
  std::string out;
  bool known = false;
  ForEachMessageType([&](auto m) {
    using M = decltype(m);
    if (known || type != static_cast<uint8_t>(M::kType)) return;
    known = true;
    absl::StatusOr<M> decoded = DecodeMessage<M>(msg, size);
    if (!decoded.ok()) {
      out = absl::StrCat(head, " malformed (", size, " bytes): ", decoded.status().message());
      return;
    }
    out = head;
    AppendFields(&out, *decoded);
  });
  if (!known) return absl::StrCat(head, " size ", size, " (not a message this client decodes)");
  return out;
}

}  // namespace p9
