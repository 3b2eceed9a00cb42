#include "core/data_dir.h"

#include <gtest/gtest.h>
#include <stdlib.h>

namespace ztslm {
namespace {

TEST(DataDirTest, TheEnvironmentWinsAndLosesItsTrailingSlashes) {
  setenv("ZTSLM_DATA_DIR", "/opt/ztslm-data//", 1);
  const DataDir d = data_dir();
  unsetenv("ZTSLM_DATA_DIR");
  EXPECT_EQ(d.path, "/opt/ztslm-data");
  EXPECT_EQ(d.origin, "ZTSLM_DATA_DIR");
}

TEST(DataDirTest, AnEmptyEnvironmentValueIsIgnored) {
  setenv("ZTSLM_DATA_DIR", "", 1);
  const DataDir d = data_dir();
  unsetenv("ZTSLM_DATA_DIR");
  EXPECT_NE(d.origin, "ZTSLM_DATA_DIR");
}

TEST(DataDirTest, AnExecutableInTheBuildTreeUsesTheSourceCheckout) {
  unsetenv("ZTSLM_DATA_DIR");
  // This test binary lives in the build tree.
  const DataDir d = data_dir();
  EXPECT_EQ(d.path, ZTSLM_SOURCE_DIR);
  EXPECT_EQ(d.origin, "source checkout");
  EXPECT_EQ(data_path("models/guard/injection.ztim"),
            std::string(ZTSLM_SOURCE_DIR) + "/models/guard/injection.ztim");
}

}  // namespace
}  // namespace ztslm
