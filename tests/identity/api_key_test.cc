#include "identity/api_key.h"

#include <sqlite3.h>
#include <sys/stat.h>

#include <filesystem>
#include <regex>

#include "identity_test_util.h"
#include "test_util.h"

namespace ztslm::identity {
namespace {

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/ztslm_identity_XXXXXX";
    path_ = mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

TEST(ApiKeyFormatTest, ParsesValidKeys) {
  auto k = parse_api_key("zt_ab12cd34_0123456789abcdefghijABCDEFGHIJ0123456789x");
  ASSERT_THAT(k, IsOk());
  EXPECT_EQ(k->key_id, "ab12cd34");
  EXPECT_EQ(k->secret, "0123456789abcdefghijABCDEFGHIJ0123456789x");
}

TEST(ApiKeyFormatTest, RejectsEachDefect) {
  const std::string secret(43, 'A');
  const char* cases[] = {
      "",
      "zt_",
      "zt_ab12cd34_",
      "ZT_ab12cd34_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
      "zx_ab12cd34_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
      "zt_AB12CD34_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",   // id is lowercase
      "zt_ab12cd3_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",   // 7-char id
      "zt_ab12cd345AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",   // no separator
      "zt_ab12cd34_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",       // 31-char secret
      "zt_ab12cd34_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",  // 65
      "zt_ab12cd34_AAAAAAAAAAAAAAAA-AAAAAAAAAAAAAAAAAAAAAAAAAA",
      "zt_ab12cd34_AAAAAAAAAAAAAAAA AAAAAAAAAAAAAAAAAAAAAAAAAA",
      "zt_ab12cd34_AAAAAAAAAAAAAAAA_AAAAAAAAAAAAAAAAAAAAAAAAAA",
  };
  for (const char* c : cases) EXPECT_THAT(parse_api_key(c), StatusIs(StatusCode::kMalformed)) << c;
}

class ApiKeyStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = ApiKeyStore::open(dir_.file("keys.db"), [this] { return now_; });
    ASSERT_THAT(s, IsOk());
    store_ = std::move(s).value();
  }
  Result<CreatedApiKey> create(std::vector<std::string> roles = {"user"}, int64_t expires_at = 0) {
    return store_->create({.name = "", .tenant = "acme", .roles = std::move(roles), .expires_at = expires_at});
  }
  TempDir dir_;
  int64_t now_ = 1700000000;
  std::unique_ptr<ApiKeyStore> store_;
};

TEST_F(ApiKeyStoreTest, CreatedKeyMatchesTheDocumentedRegexAndAuthenticates) {
  auto k = create({"user", "admin", "user"});
  ASSERT_THAT(k, IsOk());
  // The exact regex documented in README.md for secret scanners.
  EXPECT_TRUE(std::regex_match(k->token, std::regex(R"(zt_[a-z0-9]{8}_[A-Za-z0-9]{32,64})"))) << k->token;
  EXPECT_EQ(k->token.size(), 3u + 8 + 1 + 43);
  auto p = store_->authenticate(k->token);
  ASSERT_THAT(p, IsOk());
  EXPECT_EQ(p->id, "apikey:" + k->record.key_id);
  EXPECT_EQ(p->tenant, "acme");
  EXPECT_EQ(p->roles, (std::vector<std::string>{"admin", "user"}));
  EXPECT_EQ(p->method, AuthMethod::kApiKey);
  EXPECT_EQ(p->attributes.at("key_id"), k->record.key_id);
  // A second time: served from the warm cache.
  EXPECT_THAT(store_->authenticate(k->token), IsOk());
}

TEST_F(ApiKeyStoreTest, NamedKeysShareAPrincipal) {
  auto a = store_->create({.name = "svc:billing", .tenant = "acme", .roles = {"user"}, .expires_at = 0});
  auto b = store_->create({.name = "svc:billing", .tenant = "acme", .roles = {"user"}, .expires_at = 0});
  ASSERT_THAT(a, IsOk());
  ASSERT_THAT(b, IsOk());
  EXPECT_NE(a->record.key_id, b->record.key_id);
  EXPECT_EQ(store_->authenticate(a->token)->id, "svc:billing");
  EXPECT_EQ(store_->authenticate(b->token)->id, "svc:billing");
}

TEST_F(ApiKeyStoreTest, RejectsWrongSecretUnknownIdExpiredAndRevoked) {
  auto k = create({"user"}, now_ + 100);
  ASSERT_THAT(k, IsOk());
  std::string wrong = k->token;
  wrong.back() = wrong.back() == 'A' ? 'B' : 'A';
  EXPECT_THAT(store_->authenticate(wrong), StatusIs(StatusCode::kUnauthenticated));
  std::string unknown = k->token;
  unknown[3] = unknown[3] == 'a' ? 'b' : 'a';
  EXPECT_THAT(store_->authenticate(unknown), StatusIs(StatusCode::kUnauthenticated));
  std::string shorter = k->token.substr(0, k->token.size() - 1);
  EXPECT_THAT(store_->authenticate(shorter), StatusIs(StatusCode::kUnauthenticated));
  EXPECT_THAT(store_->authenticate(k->token), IsOk());
  now_ += 100;
  auto expired = store_->authenticate(k->token);
  EXPECT_THAT(expired, StatusIs(StatusCode::kUnauthenticated));
  EXPECT_NE(expired.error().message().find("expired"), std::string::npos);
  now_ -= 100;
  ASSERT_THAT(store_->revoke(k->record.key_id), IsOk());
  auto revoked = store_->authenticate(k->token);
  EXPECT_THAT(revoked, StatusIs(StatusCode::kUnauthenticated));
  EXPECT_NE(revoked.error().message().find("revoked"), std::string::npos);
  EXPECT_THAT(store_->revoke(k->record.key_id), IsOk()) << "revoking twice is fine";
  EXPECT_THAT(store_->revoke("zzzzzzzz"), StatusIs(StatusCode::kNotFound));
}

TEST_F(ApiKeyStoreTest, RevocationFromAnotherConnectionTakesEffectOnTheWarmCache) {
  auto k = create();
  ASSERT_THAT(k, IsOk());
  ASSERT_THAT(store_->authenticate(k->token), IsOk());  // now cached
  auto other = ApiKeyStore::open(dir_.file("keys.db"), [this] { return now_; });  // e.g. `ztslm keys revoke`
  ASSERT_THAT(other, IsOk());
  ASSERT_THAT((*other)->revoke(k->record.key_id), IsOk());
  EXPECT_THAT(store_->authenticate(k->token), StatusIs(StatusCode::kUnauthenticated));
}

TEST_F(ApiKeyStoreTest, ListShowsMetadataOnlyAndTheFileHoldsNoSecret) {
  auto k = create({"admin"}, now_ + 3600);
  ASSERT_THAT(k, IsOk());
  ASSERT_THAT(create(), IsOk());
  auto list = store_->list();
  ASSERT_THAT(list, IsOk());
  ASSERT_EQ(list->size(), 2u);
  const ApiKeyRecord* rec = (*list)[0].key_id == k->record.key_id ? &(*list)[0] : &(*list)[1];
  EXPECT_EQ(rec->tenant, "acme");
  EXPECT_EQ(rec->roles, std::vector<std::string>{"admin"});
  EXPECT_EQ(rec->created_at, now_);
  EXPECT_EQ(rec->expires_at, now_ + 3600);
  EXPECT_EQ(rec->revoked_at, 0);
  const std::string secret = k->token.substr(12);
  store_.reset();  // checkpoint and close
  for (const char* suffix : {"", "-wal", "-shm"}) {
    std::error_code ec;
    if (!std::filesystem::exists(dir_.file(std::string("keys.db") + suffix), ec)) continue;
    const std::string bytes = testing::read_file(dir_.file(std::string("keys.db") + suffix));
    EXPECT_EQ(bytes.find(secret), std::string::npos) << suffix;
    EXPECT_EQ(bytes.find(secret.substr(0, 16)), std::string::npos) << suffix;
  }
  struct stat st {};
  ASSERT_EQ(::stat(dir_.file("keys.db").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST_F(ApiKeyStoreTest, CreateValidatesItsInput) {
  EXPECT_THAT(store_->create({.name = "", .tenant = "", .roles = {}, .expires_at = 0}), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(store_->create({.name = "", .tenant = "a b", .roles = {}, .expires_at = 0}), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(store_->create({.name = "", .tenant = "t", .roles = {"a,b"}, .expires_at = 0}), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(store_->create({.name = "x\ny", .tenant = "t", .roles = {}, .expires_at = 0}), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(store_->create({.name = "", .tenant = "t", .roles = {}, .expires_at = now_ - 1}), StatusIs(StatusCode::kInvalidArgument));
}

TEST_F(ApiKeyStoreTest, RefusesANewerSchema) {
  store_.reset();
  // Bump the schema version the way a future release would.
  {
    auto s = ApiKeyStore::open(dir_.file("keys.db"), [] { return int64_t{0}; });
    ASSERT_THAT(s, IsOk());
  }
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(dir_.file("keys.db").c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "PRAGMA user_version=2", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  EXPECT_THAT(ApiKeyStore::open(dir_.file("keys.db"), [] { return int64_t{0}; }),
              StatusIs(StatusCode::kFailedPrecondition));
}

TEST_F(ApiKeyStoreTest, CreatedKeyWipesItsTokenWhenMoved) {
  auto k = create();
  ASSERT_THAT(k, IsOk());
  CreatedApiKey a = std::move(k).value();
  const std::string copy = a.token;
  CreatedApiKey b = std::move(a);
  EXPECT_EQ(b.token, copy);
  EXPECT_TRUE(a.token.empty());  // NOLINT(bugprone-use-after-move): the moved-from key is wiped
}

}  // namespace
}  // namespace ztslm::identity
