// Frame codec and the two protocol state machines.
#include <cmath>
#include <cstring>
#include <limits>

#include "test_util.h"
#include "worker/protocol/endpoint.h"
#include "worker/protocol/frames.h"

namespace ztslm::worker::protocol {
namespace {

std::vector<Frame> sample_frames() {
  Generate text;
  text.session_id = 9;
  text.text = "héllo <|im_start|>";
  text.sampling.stop = {"\n\n", "END"};
  text.sampling.logit_bias = {{5, -std::numeric_limits<float>::infinity()}, {7, 2.5f}};
  Generate tokens;
  tokens.session_id = 10;
  tokens.kind = PromptKind::kTokens;
  tokens.tokens = {1, 2, 3, 32000};
  Generate chat;
  chat.session_id = 11;
  chat.kind = PromptKind::kChat;
  chat.messages = {{"system", "be brief"}, {"user", "hi"}};
  chat.sampling.seed = 42;
  return {Hello{kProtocolVersion, 8, 2048},
          Ready{kProtocolVersion, 32000, 4096, 2048, 8, 4096, "seccomp kill"},
          text,
          tokens,
          chat,
          TokenChunk{9, "wor", 2},
          GenerateEnd{9, 12, 30, 4, FinishReason::kLength, 1500, 90000},
          Error{9, static_cast<uint8_t>(StatusCode::kOutOfRange), "prompt does not fit"},
          Ping{77},
          Pong{77},
          CloseSession{9},
          SessionClosed{9},
          Cancel{9}};
}

TEST(FramesTest, EveryFrameRoundTrips) {
  for (const Frame& f : sample_frames()) {
    auto bytes = encode(f);
    ASSERT_TRUE(bytes.has_value()) << frame_type_name(type_of(f)) << ": " << bytes.error().to_string();
    auto back = decode(*bytes);
    ASSERT_TRUE(back.has_value()) << frame_type_name(type_of(f)) << ": " << back.error().to_string();
    EXPECT_TRUE(*back == f) << frame_type_name(type_of(f));
    // Every strict prefix is rejected.
    for (size_t n = 0; n < bytes->size(); ++n) {
      EXPECT_FALSE(decode(std::span<const std::byte>(bytes->data(), n)).has_value()) << n;
    }
  }
}

std::vector<std::byte> with_byte(std::vector<std::byte> b, size_t at, uint8_t v) {
  b[at] = std::byte{v};
  return b;
}

TEST(FramesTest, RejectsEachDefect) {
  const std::vector<std::byte> ping = *encode(Ping{1});
  const std::vector<std::byte> chunk = *encode(TokenChunk{3, "ab", 1});
  Generate g;
  g.session_id = 1;
  g.text = "x";
  const std::vector<std::byte> gen = *encode(g);
  std::vector<std::byte> trailing = ping;
  trailing.push_back(std::byte{0});
  trailing[4] = std::byte{9};  // length says 9: consistent header, but Ping has 8 bytes of fields
  std::vector<std::byte> bad_utf8 = chunk;
  bad_utf8[kHeaderBytes + 8 + 4] = std::byte{0xC3};  // "a" -> lone lead byte before "b"
  std::vector<std::byte> nan_temp = gen;
  const float nan = std::numeric_limits<float>::quiet_NaN();
  std::memcpy(nan_temp.data() + kHeaderBytes + 8 + 1 + 4 + 1, &nan, 4);
  std::vector<std::byte> huge_count = gen;
  const uint32_t big = 0xFFFFFFFFu;
  std::memcpy(huge_count.data() + kHeaderBytes + 8 + 1, &big, 4);
  struct Row {
    const char* name;
    std::vector<std::byte> bytes;
    StatusCode code;
  };
  const Row rows[] = {
      {"empty", {}, StatusCode::kMalformed},
      {"short header", std::vector<std::byte>(ping.begin(), ping.begin() + 5), StatusCode::kMalformed},
      {"version 2", with_byte(ping, 0, 2), StatusCode::kMalformed},
      {"type 0", with_byte(ping, 1, 0), StatusCode::kMalformed},
      {"type 12", with_byte(ping, 1, 12), StatusCode::kMalformed},
      {"reserved set", with_byte(ping, 2, 1), StatusCode::kMalformed},
      {"length too long", with_byte(ping, 4, 9), StatusCode::kMalformed},
      {"length too short", with_byte(ping, 4, 7), StatusCode::kMalformed},
      {"trailing field bytes", trailing, StatusCode::kMalformed},
      {"session 0", with_byte(with_byte(chunk, kHeaderBytes, 0), kHeaderBytes, 0), StatusCode::kMalformed},
      {"invalid utf-8", bad_utf8, StatusCode::kMalformed},
      {"nan temperature", nan_temp, StatusCode::kMalformed},
      {"string length past the end", huge_count, StatusCode::kMalformed},
      {"prompt kind 3", with_byte(gen, kHeaderBytes + 8, 3), StatusCode::kMalformed},
  };
  for (const Row& r : rows) EXPECT_THAT(decode(r.bytes), StatusIs(r.code)) << r.name;
  // session 0 proper: a chunk whose id bytes are all zero.
  std::vector<std::byte> zero = chunk;
  std::memset(zero.data() + kHeaderBytes, 0, 8);
  EXPECT_THAT(decode(zero), StatusIs(StatusCode::kMalformed));
}

TEST(FramesTest, LimitsAreEnforcedBothWays) {
  Limits lim;
  lim.max_text_bytes = 8;
  Generate g;
  g.session_id = 1;
  g.text = "123456789";
  EXPECT_THAT(encode(g, lim), StatusIs(StatusCode::kInvalidArgument));  // the sender refuses
  auto bytes = encode(g);
  ASSERT_TRUE(bytes.has_value());
  EXPECT_THAT(decode(*bytes, lim), StatusIs(StatusCode::kResourceExhausted));
  Limits small;
  small.max_frame_bytes = 16;
  EXPECT_THAT(decode(*bytes, small), StatusIs(StatusCode::kResourceExhausted));
  Error e{1, 2, "line\nbreak"};
  EXPECT_THAT(encode(e), StatusIs(StatusCode::kInvalidArgument));
}

TEST(FramesTest, ReadySessionKvBytesIsBounded) {
  Ready r{kProtocolVersion, 100, 128, 128, 2, 4096, "x"};
  auto bytes = encode(r);
  ASSERT_TRUE(bytes.has_value());
  constexpr size_t kAt = kHeaderBytes + 2 + 4 * 4;  // version, n_vocab, n_ctx_train, n_ctx, max_sessions
  auto with_u64 = [&](uint64_t v) {
    std::vector<std::byte> b = *bytes;
    std::memcpy(b.data() + kAt, &v, sizeof v);
    return b;
  };
  ASSERT_TRUE(decode(with_u64(4096)).has_value());
  EXPECT_THAT(decode(with_u64(0)), StatusIs(StatusCode::kMalformed));
  EXPECT_THAT(decode(with_u64(Limits().max_session_kv_bytes + 1)), StatusIs(StatusCode::kResourceExhausted));
  EXPECT_THAT(decode(with_u64(~uint64_t{0})), StatusIs(StatusCode::kResourceExhausted));
  Limits lim;
  lim.max_session_kv_bytes = 1024;
  EXPECT_THAT(decode(*bytes, lim), StatusIs(StatusCode::kResourceExhausted));
  r.session_kv_bytes = 0;
  EXPECT_THAT(encode(r), StatusIs(StatusCode::kInvalidArgument));  // the worker never sends it
  // A gateway endpoint awaiting Ready treats an out-of-bound report as a violation.
  GatewayEndpoint gw;
  ASSERT_TRUE(gw.on_send(Hello{kProtocolVersion, 2, 128}).has_value());
  EXPECT_FALSE(gw.on_receive(with_u64(0)).has_value());
  EXPECT_EQ(gw.state(), State::kClosed);
}

// Drives both endpoints with the same frames, as a gateway and a worker would.
TEST(EndpointTest, NormalConversation) {
  GatewayEndpoint gw;
  WorkerEndpoint wk;
  auto pass_to_worker = [&](const Frame& f) {
    auto bytes = gw.on_send(f);
    ASSERT_TRUE(bytes.has_value()) << bytes.error().to_string();
    auto got = wk.on_receive(*bytes);
    ASSERT_TRUE(got.has_value()) << got.error().to_string();
  };
  auto pass_to_gateway = [&](const Frame& f) {
    auto bytes = wk.on_send(f);
    ASSERT_TRUE(bytes.has_value()) << bytes.error().to_string();
    auto got = gw.on_receive(*bytes);
    ASSERT_TRUE(got.has_value()) << got.error().to_string();
  };
  pass_to_worker(Hello{kProtocolVersion, 2, 128});
  pass_to_gateway(Ready{kProtocolVersion, 100, 128, 128, 2, 4096, "x"});
  EXPECT_EQ(gw.state(), State::kIdle);
  Generate g;
  g.session_id = 5;
  g.text = "hi";
  pass_to_worker(g);
  EXPECT_EQ(gw.state(), State::kGenerating);
  EXPECT_EQ(wk.state(), State::kGenerating);
  pass_to_worker(Ping{1});
  pass_to_gateway(TokenChunk{5, "a", 1});
  pass_to_gateway(Pong{1});
  pass_to_worker(CloseSession{4});
  pass_to_gateway(SessionClosed{4});
  pass_to_gateway(GenerateEnd{5, 1, 1, 0, FinishReason::kStop, 1, 1});
  EXPECT_EQ(gw.state(), State::kIdle);
  // A Cancel that crossed the end is tolerated by the worker.
  auto cancel = encode(Cancel{5});
  EXPECT_TRUE(wk.on_receive(*cancel).has_value());
  pass_to_worker(CloseSession{5});
  pass_to_gateway(SessionClosed{5});
}

TEST(EndpointTest, WorkerRejectsOutOfStateFrames) {
  struct Row {
    const char* name;
    std::vector<Frame> before;  // accepted first
    Frame bad;
  };
  Generate g;
  g.session_id = 5;
  g.text = "hi";
  const Hello hello{kProtocolVersion, 2, 128};
  const Row rows[] = {
      {"generate before hello", {}, g},
      {"ping before hello", {}, Ping{1}},
      {"second hello", {hello}, hello},
      {"second generate while generating", {hello, g}, g},
      {"worker-only frame", {hello}, Pong{1}},
      {"cancel of another session", {hello, g}, Cancel{6}},
      {"second ping before pong", {hello, Ping{1}}, Ping{2}},
      {"close of the active session", {hello, g}, CloseSession{5}},
  };
  for (const Row& r : rows) {
    WorkerEndpoint wk;
    for (const Frame& f : r.before) ASSERT_TRUE(wk.on_receive(*encode(f)).has_value()) << r.name;
    EXPECT_THAT(wk.on_receive(*encode(r.bad)), StatusIs(StatusCode::kFailedPrecondition)) << r.name;
    EXPECT_EQ(wk.state(), State::kClosed) << r.name;
    EXPECT_FALSE(wk.on_receive(*encode(Ping{9})).has_value()) << r.name << ": closed stays closed";
  }
}

TEST(EndpointTest, GatewayRejectsOutOfStateFrames) {
  struct Row {
    const char* name;
    bool generating;
    Frame bad;
  };
  const Row rows[] = {
      {"second ready", false, Ready{kProtocolVersion, 1, 1, 1, 1, 4096, ""}},
      {"chunk while idle", false, TokenChunk{5, "a", 1}},
      {"chunk for another session", true, TokenChunk{6, "a", 1}},
      {"end for another session", true, GenerateEnd{6, 1, 1, 0, FinishReason::kStop, 0, 0}},
      {"unsolicited pong", true, Pong{1}},
      {"unrequested session closed", false, SessionClosed{5}},
      {"gateway-only frame", false, Hello{kProtocolVersion, 1, 1}},
      {"error for another session", true, Error{6, 2, "x"}},
  };
  for (const Row& r : rows) {
    GatewayEndpoint gw;
    ASSERT_TRUE(gw.on_send(Hello{kProtocolVersion, 2, 128}).has_value());
    ASSERT_TRUE(gw.on_receive(*encode(Ready{kProtocolVersion, 100, 128, 128, 2, 4096, ""})).has_value());
    if (r.generating) {
      Generate g;
      g.session_id = 5;
      g.text = "hi";
      ASSERT_TRUE(gw.on_send(g).has_value());
    }
    EXPECT_THAT(gw.on_receive(*encode(r.bad)), StatusIs(StatusCode::kFailedPrecondition)) << r.name;
    EXPECT_EQ(gw.state(), State::kClosed) << r.name;
  }
  // A malformed datagram closes the endpoint too.
  GatewayEndpoint gw;
  ASSERT_TRUE(gw.on_send(Hello{kProtocolVersion, 2, 128}).has_value());
  EXPECT_THAT(gw.on_receive(std::vector<std::byte>(3)), StatusIs(StatusCode::kMalformed));
  EXPECT_EQ(gw.state(), State::kClosed);
}

TEST(EndpointTest, SendersCannotBreakTheirOwnHalf) {
  GatewayEndpoint gw;
  Generate g;
  g.session_id = 5;
  g.text = "hi";
  EXPECT_THAT(gw.on_send(g), StatusIs(StatusCode::kFailedPrecondition));  // before Hello
  WorkerEndpoint wk;
  EXPECT_THAT(wk.on_send(TokenChunk{5, "a", 1}), StatusIs(StatusCode::kFailedPrecondition));
}

}  // namespace
}  // namespace ztslm::worker::protocol
