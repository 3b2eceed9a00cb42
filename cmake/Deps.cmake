# Every external dependency, found once here. The Debian packages that provide them are
# installed by scripts/setup-deps.
find_package(Threads REQUIRED)

if(ZTSLM_BUILD_TESTS OR ZTSLM_FUZZ)
  find_package(GTest REQUIRED)
endif()
if(ZTSLM_BUILD_BENCH AND NOT ZTSLM_FUZZ)
  find_package(benchmark REQUIRED)
endif()
find_package(CLI11 REQUIRED)
find_package(nlohmann_json 3.10 REQUIRED)

# Gateway-side dependencies (DESIGN.md "Chosen dependencies").
find_package(PkgConfig REQUIRED)
find_package(OpenSSL 3 REQUIRED)            # OpenSSL::SSL, OpenSSL::Crypto
find_package(SQLite3 REQUIRED)              # SQLite::SQLite3
find_package(Boost 1.74 REQUIRED)           # Boost::headers (Beast, Asio)
find_package(simdjson REQUIRED)             # simdjson::simdjson
find_package(yaml-cpp REQUIRED)             # yaml-cpp
find_package(spdlog REQUIRED)               # spdlog::spdlog
find_package(CURL REQUIRED)                 # CURL::libcurl (tests)
pkg_check_modules(HYPERSCAN REQUIRED IMPORTED_TARGET libhs)          # PkgConfig::HYPERSCAN
pkg_check_modules(UTF8PROC REQUIRED IMPORTED_TARGET libutf8proc)     # PkgConfig::UTF8PROC
pkg_check_modules(SECCOMP REQUIRED IMPORTED_TARGET libseccomp)       # PkgConfig::SECCOMP
