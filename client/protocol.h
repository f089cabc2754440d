// 9P2000.L protocol constants, as in the Linux kernel's include/net/9p/9p.h
// and diod's protocol.md. Values are wire values and must never change.
#ifndef P9_CLIENT_PROTOCOL_H_
#define P9_CLIENT_PROTOCOL_H_

#include <cstdint>

namespace p9 {

// Message type byte. T-messages are even, the matching R-message is T + 1.
enum class MsgType : uint8_t {
  kTlerror = 6,
  kRlerror = 7,
  kTstatfs = 8,
  kRstatfs = 9,
  kTlopen = 12,
  kRlopen = 13,
  kTlcreate = 14,
  kRlcreate = 15,
  kTsymlink = 16,
  kRsymlink = 17,
  kTmknod = 18,
  kRmknod = 19,
  kTrename = 20,
  kRrename = 21,
  kTreadlink = 22,
  kRreadlink = 23,
  kTgetattr = 24,
  kRgetattr = 25,
  kTsetattr = 26,
  kRsetattr = 27,
  kTxattrwalk = 30,
  kRxattrwalk = 31,
  kTxattrcreate = 32,
  kRxattrcreate = 33,
  kTreaddir = 40,
  kRreaddir = 41,
  kTfsync = 50,
  kRfsync = 51,
  kTlock = 52,
  kRlock = 53,
  kTgetlock = 54,
  kRgetlock = 55,
  kTlink = 70,
  kRlink = 71,
  kTmkdir = 72,
  kRmkdir = 73,
  kTrenameat = 74,
  kRrenameat = 75,
  kTunlinkat = 76,
  kRunlinkat = 77,
  kTversion = 100,
  kRversion = 101,
  kTauth = 102,
  kRauth = 103,
  kTattach = 104,
  kRattach = 105,
  kTflush = 108,
  kRflush = 109,
  kTwalk = 110,
  kRwalk = 111,
  kTread = 116,
  kRread = 117,
  kTwrite = 118,
  kRwrite = 119,
  kTclunk = 120,
  kRclunk = 121,
  kTremove = 122,
  kRremove = 123,
};

// Human-readable name ("Twalk"), or "unknown" for a byte that is no type.
const char* MsgTypeName(uint8_t type);

// size[4] type[1] tag[2]: every message starts with this.
inline constexpr uint32_t kHeaderSize = 7;
// Tag of Tversion/Rversion; never allocated for anything else.
inline constexpr uint16_t kNoTag = 0xFFFF;
// "No fid" in Tattach/Tauth afid.
inline constexpr uint32_t kNoFid = 0xFFFFFFFF;
// n_uname meaning "no numeric uid given".
inline constexpr uint32_t kNoUid = 0xFFFFFFFF;
// Twalk/Rwalk carry at most this many names/qids.
inline constexpr uint16_t kMaxWalkElements = 16;
// Bytes of a qid on the wire: type[1] version[4] path[8].
inline constexpr uint32_t kQidSize = 13;
// Twrite header: size[4] type[1] tag[2] fid[4] offset[8] count[4].
inline constexpr uint32_t kWriteHeaderSize = 23;
// What a read/write/readdir count may be at most, msize minus this: the
// kernel's P9_IOHDRSZ. Servers (diod) enforce count <= msize - 24 and answer
// EIO above it, so this, not the exact header size, is the interoperable
// limit.
inline constexpr uint32_t kIoHeaderSize = 24;

inline constexpr char kVersion9P2000L[] = "9P2000.L";

// Qid type bits.
inline constexpr uint8_t kQtDir = 0x80;
inline constexpr uint8_t kQtAppend = 0x40;
inline constexpr uint8_t kQtExcl = 0x20;
inline constexpr uint8_t kQtAuth = 0x08;
inline constexpr uint8_t kQtTmp = 0x04;
inline constexpr uint8_t kQtSymlink = 0x02;
inline constexpr uint8_t kQtFile = 0x00;

// Tgetattr request_mask / Rgetattr valid bits.
inline constexpr uint64_t kGetattrMode = 0x00000001ULL;
inline constexpr uint64_t kGetattrNlink = 0x00000002ULL;
inline constexpr uint64_t kGetattrUid = 0x00000004ULL;
inline constexpr uint64_t kGetattrGid = 0x00000008ULL;
inline constexpr uint64_t kGetattrRdev = 0x00000010ULL;
inline constexpr uint64_t kGetattrAtime = 0x00000020ULL;
inline constexpr uint64_t kGetattrMtime = 0x00000040ULL;
inline constexpr uint64_t kGetattrCtime = 0x00000080ULL;
inline constexpr uint64_t kGetattrIno = 0x00000100ULL;
inline constexpr uint64_t kGetattrSize = 0x00000200ULL;
inline constexpr uint64_t kGetattrBlocks = 0x00000400ULL;
inline constexpr uint64_t kGetattrBtime = 0x00000800ULL;
inline constexpr uint64_t kGetattrGen = 0x00001000ULL;
inline constexpr uint64_t kGetattrDataVersion = 0x00002000ULL;
inline constexpr uint64_t kGetattrBasic = 0x000007ffULL;
inline constexpr uint64_t kGetattrAll = 0x00003fffULL;

// Tsetattr valid bits.
inline constexpr uint32_t kSetattrMode = 0x00000001;
inline constexpr uint32_t kSetattrUid = 0x00000002;
inline constexpr uint32_t kSetattrGid = 0x00000004;
inline constexpr uint32_t kSetattrSize = 0x00000008;
inline constexpr uint32_t kSetattrAtime = 0x00000010;
inline constexpr uint32_t kSetattrMtime = 0x00000020;
inline constexpr uint32_t kSetattrCtime = 0x00000040;
inline constexpr uint32_t kSetattrAtimeSet = 0x00000080;
inline constexpr uint32_t kSetattrMtimeSet = 0x00000100;

// Tlock/Tgetlock lock types and Rlock status.
inline constexpr uint8_t kLockTypeRdlck = 0;
inline constexpr uint8_t kLockTypeWrlck = 1;
inline constexpr uint8_t kLockTypeUnlck = 2;
inline constexpr uint32_t kLockFlagsBlock = 1;
inline constexpr uint32_t kLockFlagsReclaim = 2;
inline constexpr uint8_t kLockSuccess = 0;
inline constexpr uint8_t kLockBlocked = 1;
inline constexpr uint8_t kLockError = 2;
inline constexpr uint8_t kLockGrace = 3;

// Tunlinkat flags (AT_REMOVEDIR on Linux).
inline constexpr uint32_t kAtRemoveDir = 0x200;

// Txattrcreate flags (XATTR_CREATE / XATTR_REPLACE).
inline constexpr uint32_t kXattrCreate = 1;
inline constexpr uint32_t kXattrReplace = 2;

}  // namespace p9

#endif  // P9_CLIENT_PROTOCOL_H_
