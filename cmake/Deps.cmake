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
