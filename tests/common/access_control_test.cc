// AccessControl: which token grants which access, how the Authorization
// value is parsed, and the configuration rules of the security.*-token keys.
#include "common/access_control.h"

#include <gtest/gtest.h>

#include "common/config.h"

namespace slipstream {
namespace {

AccessControl Tokens(std::string admin, std::string read, std::string internal) {
  return AccessControl(AccessTokens{std::move(admin), std::move(read), std::move(internal)});
}

TEST(AccessControl, EverythingIsOpenWithoutTokens) {
  const AccessControl open;
  for (Access a : {Access::kRead, Access::kAdmin, Access::kInternal}) {
    EXPECT_FALSE(open.Required(a));
    EXPECT_TRUE(open.Check(a, "").ok());
    EXPECT_TRUE(open.Check(a, "Bearer anything").ok());
  }
}

TEST(AccessControl, AdminTokenGuardsChangesAndLeavesReadsOpen) {
  const AccessControl access = Tokens("s3cret", "", "");
  EXPECT_TRUE(access.Check(Access::kAdmin, "Bearer s3cret").ok());
  EXPECT_EQ(access.Check(Access::kAdmin, "").code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(access.Check(Access::kAdmin, "Bearer s3cre").code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(access.Check(Access::kAdmin, "Bearer s3cret2").code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(access.Check(Access::kAdmin, "Basic s3cret").code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(access.Check(Access::kAdmin, "s3cret").code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(access.Check(Access::kAdmin, "Bearer ").code(), absl::StatusCode::kUnauthenticated);
  EXPECT_TRUE(access.Check(Access::kRead, "").ok());
  EXPECT_TRUE(access.Check(Access::kInternal, "").ok());
}

TEST(AccessControl, BearerSchemeIsCaseInsensitiveAndTheTokenIsNot) {
  const AccessControl access = Tokens("Tok", "", "");
  EXPECT_TRUE(access.Check(Access::kAdmin, "bearer Tok").ok());
  EXPECT_TRUE(access.Check(Access::kAdmin, "BEARER  Tok ").ok());
  EXPECT_FALSE(access.Check(Access::kAdmin, "Bearer tok").ok());
  EXPECT_FALSE(access.Check(Access::kAdmin, "BearerTok").ok());
}

TEST(AccessControl, ReadTokenOrAdminTokenGrantReads) {
  const AccessControl access = Tokens("adm", "rd", "int");
  EXPECT_TRUE(access.Check(Access::kRead, "Bearer rd").ok());
  EXPECT_TRUE(access.Check(Access::kRead, "Bearer adm").ok());
  EXPECT_FALSE(access.Check(Access::kRead, "Bearer int").ok());
  EXPECT_FALSE(access.Check(Access::kRead, "").ok());
  // The read token never changes the job.
  EXPECT_FALSE(access.Check(Access::kAdmin, "Bearer rd").ok());
}

TEST(AccessControl, InternalTokenIsNeitherAdminNorRead) {
  const AccessControl access = Tokens("adm", "rd", "int");
  EXPECT_TRUE(access.Check(Access::kInternal, "Bearer int").ok());
  EXPECT_FALSE(access.Check(Access::kInternal, "Bearer adm").ok());
  EXPECT_FALSE(access.Check(Access::kInternal, "Bearer rd").ok());
  EXPECT_FALSE(access.Check(Access::kAdmin, "Bearer int").ok());
}

TEST(AccessControl, MessagesNameTheKeyButNeverTheToken) {
  const AccessControl access = Tokens("very-secret-admin", "very-secret-read", "");
  const absl::Status missing = access.Check(Access::kAdmin, "");
  EXPECT_NE(missing.message().find("security.admin-token"), absl::string_view::npos) << missing;
  const absl::Status wrong = access.Check(Access::kRead, "Bearer nope");
  EXPECT_NE(wrong.message().find("security.read-token"), absl::string_view::npos) << wrong;
  for (const absl::Status& s : {missing, wrong}) {
    EXPECT_EQ(s.message().find("very-secret"), absl::string_view::npos) << s;
  }
}

TEST(AccessControl, ConstantTimeEqualsComparesWholeStrings) {
  EXPECT_TRUE(ConstantTimeEquals("abc", "abc"));
  EXPECT_TRUE(ConstantTimeEquals("", ""));
  EXPECT_FALSE(ConstantTimeEquals("abc", "abd"));
  EXPECT_FALSE(ConstantTimeEquals("ab", "abc"));
  EXPECT_FALSE(ConstantTimeEquals("abcd", "abc"));
  EXPECT_FALSE(ConstantTimeEquals("", "abc"));
  EXPECT_FALSE(ConstantTimeEquals("abc", ""));
  // A NUL byte is a byte like any other (no C-string comparison).
  EXPECT_FALSE(ConstantTimeEquals(std::string_view("ab\0", 3), "ab"));
}

TEST(AccessControl, FromConfigReadsTheThreeKeys) {
  absl::StatusOr<Config> config = Config::FromMap({{"security.admin-token", "a"},
                                                   {"security.read-token", "r"},
                                                   {"security.internal-token", "i"}});
  ASSERT_TRUE(config.ok()) << config.status();
  absl::StatusOr<AccessControl> access = AccessControl::FromConfig(*config);
  ASSERT_TRUE(access.ok()) << access.status();
  EXPECT_EQ(access->tokens().admin, "a");
  EXPECT_EQ(access->tokens().read, "r");
  EXPECT_EQ(access->tokens().internal, "i");
}

TEST(AccessControl, ReadTokenWithoutAdminTokenIsAnError) {
  absl::StatusOr<Config> config = Config::FromMap({{"security.read-token", "r"}});
  ASSERT_TRUE(config.ok()) << config.status();
  absl::StatusOr<AccessControl> access = AccessControl::FromConfig(*config);
  ASSERT_FALSE(access.ok());
  EXPECT_NE(access.status().message().find("security.admin-token"), absl::string_view::npos);
}

}  // namespace
}  // namespace slipstream
