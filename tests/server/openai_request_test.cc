#include "server/openai/request.h"

#include <nlohmann/json.hpp>

#include "server/openai/errors.h"
#include "test_util.h"

namespace ztslm::server::openai {
namespace {

ParseLimits limits() {
  ParseLimits l;
  l.max_body_bytes = 4096;
  l.max_messages = 4;
  l.max_message_bytes = 64;
  l.max_tokens = 100;
  return l;
}

TEST(OpenAiRequestTest, ParsesEveryAcceptedChatField) {
  const std::string body = R"({"model":"m","messages":[{"role":"system","content":"be brief"},
      {"role":"user","content":[{"type":"text","text":"hi "},{"type":"text","text":"there"}]}],
      "max_completion_tokens":7,"temperature":0.5,"top_p":0.9,"stop":["x","y"],"seed":42,
      "stream":true,"stream_options":{"include_usage":true},"user":"u1","n":1,
      "frequency_penalty":0.1,"presence_penalty":null})";
  auto r = parse_chat_request(body, limits());
  ASSERT_TRUE(r.has_value()) << r.error().to_string();
  EXPECT_EQ(r->model, "m");
  ASSERT_EQ(r->messages.size(), 2u);
  EXPECT_EQ(r->messages[1].content, "hi there");
  EXPECT_EQ(r->sampling.max_tokens, 7u);
  EXPECT_FLOAT_EQ(r->sampling.temperature, 0.5f);
  EXPECT_EQ(r->sampling.stop, (std::vector<std::string>{"x", "y"}));
  EXPECT_TRUE(r->sampling.has_seed);
  EXPECT_EQ(r->sampling.seed, 42u);
  EXPECT_TRUE(r->stream);
  EXPECT_TRUE(r->include_usage);
  EXPECT_EQ(r->user, "u1");
}

TEST(OpenAiRequestTest, CompletionPromptStringOrSingleArray) {
  auto a = parse_completion_request(R"({"model":"m","prompt":"abc"})", limits());
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->prompt, "abc");
  auto b = parse_completion_request(R"({"model":"m","prompt":["abc"],"max_tokens":3})", limits());
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(b->prompt, "abc");
  EXPECT_FALSE(b->is_chat);
}

TEST(OpenAiRequestTest, RejectsEachDefect) {
  const std::string big(5000, 'a');
  const struct {
    const char* name;
    std::string body;
    StatusCode code;
  } kCases[] = {
      {"not json", "{", StatusCode::kMalformed},
      {"trailing garbage", R"({"model":"m","messages":[{"role":"user","content":"x"}]} x)", StatusCode::kMalformed},
      {"invalid utf8", std::string("{\"model\":\"\xff\",\"messages\":[]}"), StatusCode::kMalformed},
      {"too deep", std::string(40, '[') + std::string(40, ']'), StatusCode::kMalformed},
      {"body too large", "{\"model\":\"" + big + "\"}", StatusCode::kResourceExhausted},
      {"not an object", "[]", StatusCode::kInvalidArgument},
      {"no model", R"({"messages":[{"role":"user","content":"x"}]})", StatusCode::kInvalidArgument},
      {"no messages", R"({"model":"m"})", StatusCode::kInvalidArgument},
      {"empty messages", R"({"model":"m","messages":[]})", StatusCode::kInvalidArgument},
      {"tools", R"({"model":"m","messages":[{"role":"user","content":"x"}],"tools":[]})", StatusCode::kInvalidArgument},
      {"unknown field", R"({"model":"m","messages":[{"role":"user","content":"x"}],"foo":1})", StatusCode::kInvalidArgument},
      {"n > 1", R"({"model":"m","messages":[{"role":"user","content":"x"}],"n":2})", StatusCode::kInvalidArgument},
      {"duplicate key", R"({"model":"m","model":"n","messages":[{"role":"user","content":"x"}]})", StatusCode::kInvalidArgument},
      {"bad role", R"({"model":"m","messages":[{"role":"function","content":"x"}]})", StatusCode::kInvalidArgument},
      {"message extra field", R"({"model":"m","messages":[{"role":"user","content":"x","name":"a"}]})", StatusCode::kInvalidArgument},
      {"image part", R"({"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{}}]}]})", StatusCode::kInvalidArgument},
      {"content null", R"({"model":"m","messages":[{"role":"assistant","content":null}]})", StatusCode::kInvalidArgument},
      {"too many messages", R"({"model":"m","messages":[{"role":"user","content":"x"},{"role":"user","content":"x"},{"role":"user","content":"x"},{"role":"user","content":"x"},{"role":"user","content":"x"}]})", StatusCode::kResourceExhausted},
      {"message too long", "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"" + std::string(65, 'x') + "\"}]}", StatusCode::kResourceExhausted},
      {"temperature range", R"({"model":"m","messages":[{"role":"user","content":"x"}],"temperature":3})", StatusCode::kInvalidArgument},
      {"temperature type", R"({"model":"m","messages":[{"role":"user","content":"x"}],"temperature":"hot"})", StatusCode::kInvalidArgument},
      {"top_p zero", R"({"model":"m","messages":[{"role":"user","content":"x"}],"top_p":0})", StatusCode::kInvalidArgument},
      {"max_tokens zero", R"({"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":0})", StatusCode::kInvalidArgument},
      {"max_tokens cap", R"({"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":101})", StatusCode::kInvalidArgument},
      {"max_tokens float", R"({"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":1.5})", StatusCode::kInvalidArgument},
      {"both max", R"({"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":1,"max_completion_tokens":2})", StatusCode::kInvalidArgument},
      {"five stops", R"({"model":"m","messages":[{"role":"user","content":"x"}],"stop":["a","b","c","d","e"]})", StatusCode::kInvalidArgument},
      {"empty stop in list", R"({"model":"m","messages":[{"role":"user","content":"x"}],"stop":[""]})", StatusCode::kInvalidArgument},
      {"stream_options without stream", R"({"model":"m","messages":[{"role":"user","content":"x"}],"stream_options":{"include_usage":true}})", StatusCode::kInvalidArgument},
      {"stream_options unknown", R"({"model":"m","messages":[{"role":"user","content":"x"}],"stream":true,"stream_options":{"x":1}})", StatusCode::kInvalidArgument},
      {"stream not bool", R"({"model":"m","messages":[{"role":"user","content":"x"}],"stream":1})", StatusCode::kInvalidArgument},
      {"logprobs", R"({"model":"m","messages":[{"role":"user","content":"x"}],"logprobs":true})", StatusCode::kInvalidArgument},
      {"completion messages", R"({"model":"m","messages":[{"role":"user","content":"x"}]})", StatusCode::kInvalidArgument},
  };
  for (const auto& c : kCases) {
    const bool completion = std::string(c.name) == "completion messages";
    auto r = completion ? parse_completion_request(c.body, limits()) : parse_chat_request(c.body, limits());
    EXPECT_THAT(r, StatusIs(c.code)) << c.name;
  }
}

TEST(OpenAiRequestTest, UnsupportedFieldIsNamedInTheError) {
  auto r = parse_chat_request(R"({"model":"m","messages":[{"role":"user","content":"x"}],"tools":[]})", limits());
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message().find("'tools'"), std::string::npos);
}

TEST(OpenAiErrorsTest, MapsStatusToHttpAndOpenAiShape) {
  const struct {
    Status s;
    int http;
    const char* type;
  } kCases[] = {
      {Status::invalid_argument("x"), 400, "invalid_request_error"},
      {Status::malformed("x"), 400, "invalid_request_error"},
      {Status::unauthenticated("x"), 401, "authentication_error"},
      {Status::permission_denied("x"), 403, "permission_error"},
      {Status::not_found("x"), 404, "invalid_request_error"},
      {Status::resource_exhausted("x"), 429, "rate_limit_error"},
      {Status::unavailable("x"), 503, "server_error"},
      {Status::internal("secret detail"), 500, "server_error"},
  };
  for (const auto& c : kCases) {
    const HttpError e = error_response(c.s);
    EXPECT_EQ(e.http_status, c.http) << c.s.to_string();
    const auto j = nlohmann::json::parse(e.body);
    EXPECT_EQ(j["error"]["type"], c.type);
    EXPECT_TRUE(j["error"].contains("code"));
    EXPECT_TRUE(j["error"]["param"].is_null());
  }
  EXPECT_EQ(nlohmann::json::parse(error_response(Status::internal("secret detail")).body)["error"]["message"],
            "internal error");
  EXPECT_EQ(error_response(Status::resource_exhausted("big"), 413).http_status, 413);
}

TEST(OpenAiRequestTest, ToolMessagesAndDocumentsAreIndirectInput) {
  auto r = parse_chat_request(R"({"model":"m","messages":[{"role":"user","content":"q"},
      {"role":"tool","content":"result"}],"documents":["doc one",{"text":"doc two"}]})", limits());
  ASSERT_TRUE(r.has_value()) << r.error().to_string();
  EXPECT_EQ(r->messages[1].role, "tool");
  EXPECT_EQ(r->documents, (std::vector<std::string>{"doc one", "doc two"}));
  // Bounded like messages, strict like everything else, and chat only.
  EXPECT_EQ(parse_chat_request(R"({"model":"m","messages":[{"role":"user","content":"q"}],"documents":["a","b","c","d","e"]})", limits()).error().code(),
            StatusCode::kResourceExhausted);
  EXPECT_EQ(parse_chat_request(R"({"model":"m","messages":[{"role":"user","content":"q"}],"documents":[{"text":"a","url":"x"}]})", limits()).error().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(parse_chat_request(R"({"model":"m","messages":[{"role":"user","content":"q"}],"documents":[7]})", limits()).error().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(parse_chat_request(std::string(R"({"model":"m","messages":[{"role":"user","content":"q"}],"documents":[")") + std::string(65, 'x') + "\"]}", limits()).error().code(),
            StatusCode::kResourceExhausted);
  EXPECT_FALSE(parse_completion_request(R"({"model":"m","prompt":"p","documents":["a"]})", limits()).has_value());
}

}  // namespace
}  // namespace ztslm::server::openai
