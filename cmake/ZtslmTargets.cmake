# The only way to add targets (STYLE.md §7): ztslm_library, ztslm_test, ztslm_fuzzer, ztslm_bench.
include_guard(GLOBAL)
include(GoogleTest OPTIONAL)

set(ZTSLM_WARNINGS -Wall -Wextra -Wshadow -Wconversion -Wno-sign-conversion -Werror)
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
  # GCC 12 reports impossible memcpy overlaps inside std::string's operator+ at -O3 (GCC bug
  # 105329); the warning is wrong there and right nowhere we could act on it.
  list(APPEND ZTSLM_WARNINGS -Wno-restrict)
endif()
set(ZTSLM_HARDENING -fstack-protector-strong)
set(ZTSLM_HARDENING_LINK -Wl,-z,relro,-z,now -Wl,-z,noexecstack)

if(ZTSLM_FUZZ)
  set(ZTSLM_SANITIZE ON)
endif()
if(ZTSLM_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-sanitize-recover=undefined
                      -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined)
endif()
if(ZTSLM_FUZZ)
  # Instrument everything for coverage; the fuzzer main is linked only into fuzz targets.
  add_compile_options(-fsanitize=fuzzer-no-link)
endif()

# Flags common to every target of ours.
function(_ztslm_common target)
  target_compile_options(${target} PRIVATE ${ZTSLM_WARNINGS} ${ZTSLM_HARDENING})
  # _FORTIFY_SOURCE needs optimisation; glibc warns (an error under -Werror) without it.
  target_compile_definitions(${target} PRIVATE
    $<$<NOT:$<CONFIG:Debug>>:_FORTIFY_SOURCE=3>)
  target_link_options(${target} PRIVATE ${ZTSLM_HARDENING_LINK})
endfunction()

# ztslm_library(NAME gguf TRUST U SRCS a.cc b.cc DEPS ztslm::core [NO_EXCEPTIONS])
# Creates ztslm_<NAME> with alias ztslm::<NAME>; includes resolve from src/ ("gguf/reader.h").
function(ztslm_library)
  cmake_parse_arguments(L "NO_EXCEPTIONS" "NAME;TRUST" "SRCS;DEPS;EXTERNAL" ${ARGN})
  if(NOT L_TRUST MATCHES "^(U|T|-)$")
    message(FATAL_ERROR "ztslm_library(${L_NAME}): TRUST must be U, T or -")
  endif()
  set(target ztslm_${L_NAME})
  add_library(${target} STATIC ${L_SRCS})
  add_library(ztslm::${L_NAME} ALIAS ${target})
  target_include_directories(${target} PUBLIC ${PROJECT_SOURCE_DIR}/src)
  target_link_libraries(${target} PUBLIC ${L_DEPS} ${L_EXTERNAL})
  set_target_properties(${target} PROPERTIES CXX_VISIBILITY_PRESET hidden
                        VISIBILITY_INLINES_HIDDEN ON ZTSLM_TRUST ${L_TRUST})
  if(L_NO_EXCEPTIONS)
    target_compile_options(${target} PRIVATE -fno-exceptions)
  endif()
  _ztslm_common(${target})
endfunction()

# ztslm_test(NAME core SRCS a_test.cc DEPS ztslm::core): one gtest executable per component
# (or engine sub-area), registered with gtest_discover_tests.
function(ztslm_test)
  cmake_parse_arguments(T "" "NAME" "SRCS;DEPS" ${ARGN})
  set(target ztslm_${T_NAME}_test)
  add_executable(${target} ${T_SRCS})
  target_link_libraries(${target} PRIVATE ${T_DEPS} GTest::gtest GTest::gmock GTest::gtest_main)
  target_compile_definitions(${target} PRIVATE
    ZTSLM_SHARED_DIR="${ZTSLM_SHARED_DIR}" ZTSLM_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
  target_include_directories(${target} PRIVATE ${PROJECT_SOURCE_DIR}/tests)
  _ztslm_common(${target})
  gtest_discover_tests(${target} DISCOVERY_TIMEOUT 60 PROPERTIES TIMEOUT 900)
endfunction()

# ztslm_fuzzer(NAME gguf_reader SRCS gguf_reader_fuzz.cc DEPS ztslm::gguf)
# With ZTSLM_FUZZ: a libFuzzer binary. Otherwise: a replay test that runs the target over every
# file of fuzz/corpus/<NAME>/ (ordinary CI keeps the corpus green).
function(ztslm_fuzzer)
  cmake_parse_arguments(F "" "NAME" "SRCS;DEPS" ${ARGN})
  set(target ztslm_${F_NAME}_fuzz)
  if(ZTSLM_FUZZ)
    add_executable(${target} ${F_SRCS})
    target_link_options(${target} PRIVATE -fsanitize=fuzzer)
  elseif(ZTSLM_BUILD_TESTS)
    add_executable(${target} ${F_SRCS} ${PROJECT_SOURCE_DIR}/fuzz/replay_main.cc)
    add_test(NAME ${target}_replay
             COMMAND ${target} ${PROJECT_SOURCE_DIR}/fuzz/corpus/${F_NAME})
    set_tests_properties(${target}_replay PROPERTIES TIMEOUT 600)
  else()
    return()
  endif()
  target_link_libraries(${target} PRIVATE ${F_DEPS})
  target_include_directories(${target} PRIVATE ${PROJECT_SOURCE_DIR}/tests)
  _ztslm_common(${target})
endfunction()

# ztslm_bench(NAME engine_kernels SRCS ... DEPS ...): a Google Benchmark executable.
function(ztslm_bench)
  cmake_parse_arguments(B "" "NAME" "SRCS;DEPS" ${ARGN})
  set(target ztslm_${B_NAME}_bench)
  add_executable(${target} ${B_SRCS})
  target_link_libraries(${target} PRIVATE ${B_DEPS} benchmark::benchmark)
  target_compile_definitions(${target} PRIVATE ZTSLM_SHARED_DIR="${ZTSLM_SHARED_DIR}")
  _ztslm_common(${target})
endfunction()
