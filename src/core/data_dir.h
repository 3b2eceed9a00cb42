// Where ztslm finds its read-only data: policy/, models/ (guard, demo), trust/ (publisher keys).
// One rule for every command; the first that applies wins:
//   1. $ZTSLM_DATA_DIR when set and non-empty (operators, tests);
//   2. the source checkout, when the running executable lives in the build tree it was built in
//      (developers: build/release/src/ztslm reads <checkout>/models, <checkout>/policy);
//   3. <directory of the executable>/../share/ztslm when that directory exists (an installed or
//      relocated tree: /usr/bin/ztslm -> /usr/share/ztslm, /opt/z/bin/ztslm -> /opt/z/share/ztslm);
//   4. the install prefix's data directory fixed at build time (CMAKE_INSTALL_FULL_DATADIR/ztslm).
// The layout below the data directory is the same in the checkout and in an install.
#pragma once

#include <string>
#include <string_view>

namespace ztslm {

struct DataDir {
  std::string path;  // no trailing slash
  // Which rule chose it: "ZTSLM_DATA_DIR", "source checkout", "next to the executable",
  // "install prefix".
  std::string origin;
};

// Resolves the data directory by the rule above. Never fails: rule 4 is the last resort, whether
// or not it exists (a missing file is then reported by whoever opens it).
DataDir data_dir();

// data_dir().path + "/" + relative (e.g. "models/guard/injection.ztim").
std::string data_path(std::string_view relative);

}  // namespace ztslm
