// The input format of the session fuzz target (fuzz_session.cc), shared
// with the seed generator (make_corpus.cc) so that the seeds answer the
// calls the target actually makes.
//
//   input[0]   flags (below)
//   input[1..] the server's byte stream: sent as it is, in one piece, once
//              the target's three calls are waiting for their replies
#ifndef P9_TESTS_FUZZ_SESSION_STREAM_H_
#define P9_TESTS_FUZZ_SESSION_STREAM_H_

#include <cstdint>

namespace p9_test::session_stream {

// Name of the target and of its corpus directory.
inline constexpr char kTargetName[] = "Session";

// Keep the connection open after the stream, so that calls left without a
// reply time out and are flushed; otherwise the server closes it.
inline constexpr uint8_t kKeepOpen = 1;
// Answer every Tflush with an Rflush (the flushed call then fails alone;
// without it the flush times out and the session closes its channel).
inline constexpr uint8_t kAnswerFlush = 2;
// The stream's first frame (by its size field) answers Tversion, instead
// of the target's own valid Rversion; the rest follows as usual.
inline constexpr uint8_t kOwnRversion = 4;
// The read is Session::ReadTo (payload handed over on the delivery thread)
// instead of Session::Read.
inline constexpr uint8_t kReadTo = 8;
// The read is Session::ReadMany of kReadCount bytes in kManyPieces pipelined
// Treads (tags kReadTag.., then the getattr takes kManyGetattrTag).
inline constexpr uint8_t kReadMany = 16;
// Likewise, but the second call is Session::WriteMany of kReadCount bytes.
inline constexpr uint8_t kWriteMany = 32;

// The read is Session::ReadAsync (nobody waits on the call; the delivery
// thread, the reaper or the closing channel ends it).
inline constexpr uint8_t kReadAsync = 64;

// (kReadTo, kReadMany, kWriteMany and kReadAsync: the first set of them
// wins.)

// msize the target asks for, and grants in its own Rversion.
inline constexpr uint32_t kMsize = 8192;
// The calls are armed one after the other, so they take the lowest tags in
// this order; flushes take the next free ones (3, 4, 5).
inline constexpr uint16_t kWalkTag = 0;
inline constexpr uint16_t kReadTag = 1;
inline constexpr uint16_t kGetattrTag = 2;
inline constexpr uint32_t kReadCount = 64;
inline constexpr uint32_t kManyPieces = 4;
inline constexpr uint32_t kManyPiece = kReadCount / kManyPieces;
inline constexpr uint16_t kManyGetattrTag = kReadTag + kManyPieces;

}  // namespace p9_test::session_stream

#endif  // P9_TESTS_FUZZ_SESSION_STREAM_H_
