#include "engine/sampler/stop_matcher.h"

#include <string>
#include <vector>

#include "core/utf8.h"
#include "test_util.h"

namespace ztslm::engine {
namespace {

StopMatcher make(std::vector<std::string> stops) {
  auto m = StopMatcher::create(stops);
  EXPECT_TRUE(m.has_value());
  return std::move(m).value();
}

// Feeds `chunks` and returns everything emitted (plus finish() when no stop was hit).
struct StreamRun {
  std::string emitted;
  bool stopped = false;
  std::vector<std::string> pieces;
};
StreamRun run(StopMatcher m, const std::vector<std::string>& chunks) {
  StreamRun r;
  for (const std::string& c : chunks) {
    StopMatcher::Output o = m.feed(c);
    r.pieces.push_back(o.text);
    r.emitted += o.text;
    if (o.stopped) {
      r.stopped = true;
      break;
    }
  }
  if (!r.stopped) r.emitted += m.finish();
  return r;
}

TEST(StopMatcherTest, NoStopsPassesEverythingThrough) {
  StopMatcher m = make({});
  EXPECT_EQ(m.feed("hello ").text, "hello ");
  EXPECT_EQ(m.feed("world").text, "world");
  EXPECT_EQ(m.held_bytes(), 0u);
}

TEST(StopMatcherTest, StopInsideOneChunkCutsBeforeIt) {
  const StreamRun r = run(make({"###"}), {"answer: 42### and more"});
  EXPECT_TRUE(r.stopped);
  EXPECT_EQ(r.emitted, "answer: 42");
}

TEST(StopMatcherTest, StopSplitAcrossChunksIsCaught) {
  StopMatcher m = make({"</end>"});
  StopMatcher::Output a = m.feed("text </e");
  EXPECT_EQ(a.text, "text ");  // "</e" could start the stop string: held
  EXPECT_FALSE(a.stopped);
  EXPECT_EQ(m.held_bytes(), 3u);
  StopMatcher::Output b = m.feed("nd> tail");
  EXPECT_TRUE(b.stopped);
  EXPECT_EQ(b.text, "");
  // Nothing after the stop, ever.
  StopMatcher::Output c = m.feed("more");
  EXPECT_TRUE(c.stopped);
  EXPECT_EQ(c.text, "");
  EXPECT_EQ(m.finish(), "");
}

TEST(StopMatcherTest, StopSplitOneByteAtATime) {
  std::vector<std::string> chunks;
  for (char ch : std::string("abc STOP def")) chunks.emplace_back(1, ch);
  const StreamRun r = run(make({"STOP"}), chunks);
  EXPECT_TRUE(r.stopped);
  EXPECT_EQ(r.emitted, "abc ");
}

TEST(StopMatcherTest, FalseStartIsReleasedWhenDisambiguated) {
  StopMatcher m = make({"\nUser:"});
  EXPECT_EQ(m.feed("line one\nUs").text, "line one");
  StopMatcher::Output o = m.feed("ually fine");
  EXPECT_FALSE(o.stopped);
  EXPECT_EQ(o.text, "\nUsually fine");
}

TEST(StopMatcherTest, OverlappingPrefixes) {
  // "aab" inside "aaab": the held "aa" must not hide the match that starts one byte later.
  EXPECT_EQ(run(make({"aab"}), {"xa", "a", "a", "b", "y"}).emitted, "xa");
  // Two stop strings sharing a prefix; the shorter completes first.
  StreamRun r = run(make({"<|im_end|>", "<|im"}), {"hi <|", "im_start|>"});
  EXPECT_TRUE(r.stopped);
  EXPECT_EQ(r.emitted, "hi ");
  // The leftmost complete stop wins over one that starts later.
  r = run(make({"cd", "bcdx"}), {"abcd"});
  EXPECT_EQ(r.emitted, "ab");
  // A self-overlapping stop string ("abab") held across chunks.
  r = run(make({"abab"}), {"xab", "aab", "ab!"});
  EXPECT_TRUE(r.stopped);
  EXPECT_EQ(r.emitted, "xaba");
}

TEST(StopMatcherTest, HoldsLongestPossiblePrefixOnly) {
  StopMatcher m = make({"abc", "bcd"});
  StopMatcher::Output o = m.feed("zzab");
  EXPECT_EQ(o.text, "zz");  // "ab" could start "abc"
  o = m.feed("x");
  EXPECT_EQ(o.text, "abx");
  EXPECT_EQ(m.held_bytes(), 0u);
}

TEST(StopMatcherTest, EndWithoutStopFlushesHeldText) {
  StopMatcher m = make({"STOP"});
  EXPECT_EQ(m.feed("the end ST").text, "the end ");
  EXPECT_EQ(m.finish(), "ST");
  EXPECT_FALSE(m.stopped());
}

TEST(StopMatcherTest, MultiByteStopStringSplitInsideACharacter) {
  // "→" is E2 86 92; split the stop string "→ fin" in the middle of the arrow.
  const std::string arrow = "\xE2\x86\x92";
  const StreamRun r = run(make({arrow + " fin"}), {"voilà \xE2", "\x86", "\x92 fi", "n!"});
  EXPECT_TRUE(r.stopped);
  EXPECT_EQ(r.emitted, "voil\xC3\xA0 ");
}

TEST(StopMatcherTest, NeverEmitsPartialUtf8) {
  // A 4-byte emoji (F0 9F 98 80) fed a byte at a time, no stop strings involved except one
  // that never matches; every piece must be well-formed on its own.
  const std::string text = "ok \xF0\x9F\x98\x80 \xE6\x97\xA5\xE6\x9C\xAC done";
  std::vector<std::string> chunks;
  for (char ch : text) chunks.emplace_back(1, ch);
  const StreamRun r = run(make({"zzz"}), chunks);
  EXPECT_FALSE(r.stopped);
  EXPECT_EQ(r.emitted, text);
  for (const std::string& piece : r.pieces) EXPECT_TRUE(is_valid_utf8(piece)) << piece;
}

TEST(StopMatcherTest, StopStringWithMultiByteCharacterDoesNotMatchOtherCharacter) {
  // "é" (C3 A9) vs "ê" (C3 AA): same first byte, different character.
  const StreamRun r = run(make({"caf\xC3\xA9"}), {"un caf\xC3", "\xAA noir"});
  EXPECT_FALSE(r.stopped);
  EXPECT_EQ(r.emitted, "un caf\xC3\xAA noir");
}

TEST(StopMatcherTest, HeldTextIsBounded) {
  StopMatcher m = make({"0123456789"});
  for (int i = 0; i < 1000; ++i) {
    (void)m.feed("012345678");  // always a prefix, never the stop
    ASSERT_LE(m.held_bytes(), 9u + 3u);
  }
}

TEST(StopMatcherTest, EmptyStopStringIsInvalid) {
  const std::vector<std::string> stops = {"a", ""};
  EXPECT_THAT(StopMatcher::create(stops), StatusIs(StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace ztslm::engine
