# Fuzz targets (tests/fuzz/<name>_fuzz.cpp, docs/fuzzing.md) in the main build, with any
# compiler: each is linked with a replay main and registered as test fuzz_replay_<name>, which
# runs its seed corpus and every kept crash input; they are the regression tests and take
# seconds. The test `fuzz` builds the same targets with clang and libFuzzer in a build of its own
# (tests/fuzz/CMakeLists.txt) and fuzzes each for a bounded time; without clang it is skipped.
set(EXPRUN_FUZZ_DIR ${CMAKE_CURRENT_SOURCE_DIR}/tests/fuzz)
# The checkpoint seed is written by this build, so it always has the current format.
set(EXPRUN_FUZZ_SEED_DIR ${CMAKE_BINARY_DIR}/fuzz_seeds)

add_library(exprun_fuzz_support STATIC ${EXPRUN_FUZZ_DIR}/fuzz_support.cpp)
target_include_directories(exprun_fuzz_support PUBLIC ${EXPRUN_FUZZ_DIR})

add_executable(fuzz_make_checkpoint_seed ${EXPRUN_FUZZ_DIR}/make_checkpoint_seed.cpp)
target_link_libraries(fuzz_make_checkpoint_seed PRIVATE exprun_core exprun_fuzz_support)
exprun_use_pch(fuzz_make_checkpoint_seed)
add_custom_command(OUTPUT ${EXPRUN_FUZZ_SEED_DIR}/checkpoint/tiny
  COMMAND ${CMAKE_COMMAND} -E make_directory ${EXPRUN_FUZZ_SEED_DIR}/checkpoint
  COMMAND fuzz_make_checkpoint_seed ${EXPRUN_FUZZ_SEED_DIR}/checkpoint/tiny
  DEPENDS fuzz_make_checkpoint_seed VERBATIM)
add_custom_target(fuzz_seeds ALL DEPENDS ${EXPRUN_FUZZ_SEED_DIR}/checkpoint/tiny)

file(GLOB fuzz_sources CONFIGURE_DEPENDS ${EXPRUN_FUZZ_DIR}/*_fuzz.cpp)
foreach(src ${fuzz_sources})
  get_filename_component(file_name ${src} NAME_WE)
  string(REGEX REPLACE "_fuzz$" "" name ${file_name})
  set(target fuzz_${name}_replay)
  add_executable(${target} ${src} ${EXPRUN_FUZZ_DIR}/replay_main.cpp)
  # The dataset readers are linked as the plugin libraries the runner loads.
  if(name STREQUAL "aariz")
    target_link_libraries(${target} PRIVATE exprun_plugin_datasets_aariz)
  elseif(name STREQUAL "isbi")
    target_link_libraries(${target} PRIVATE exprun_plugin_datasets_isbi2015)
  else()
    target_link_libraries(${target} PRIVATE exprun_core)
  endif()
  target_link_libraries(${target} PRIVATE exprun_fuzz_support)
  exprun_use_pch(${target})
  add_test(NAME fuzz_replay_${name}
    COMMAND ${target} ${EXPRUN_FUZZ_DIR}/corpus/${name} ${EXPRUN_FUZZ_DIR}/regressions/${name}
      ${EXPRUN_FUZZ_SEED_DIR}/${name})
  set_tests_properties(fuzz_replay_${name} PROPERTIES LABELS unit TIMEOUT 300)
endforeach()

# The clang build lives in the build tree; FUZZ_SECONDS is per target (5 targets: about 60 s).
set(EXPRUN_FUZZ_SECONDS 12 CACHE STRING "Seconds the fuzz test runs each fuzz target")
# The campaign costs a clang build of its own (about 2.5 min on 2 cores) and explores the same
# parsers whichever LibTorch the main build uses, so the wheel flavour's setup turns it off and
# CI fuzzes once, in the Debian flavour; the replay tests above run in every build. Off, the test
# is still listed, as "Not Run (Disabled)".
option(EXPRUN_FUZZ_CAMPAIGN "Run the fuzz campaign as the `fuzz` test" ON)
add_test(NAME fuzz
  COMMAND ${EXPRUN_FUZZ_DIR}/run_fuzzers.sh
    --build-dir ${CMAKE_BINARY_DIR}/fuzz-clang
    --seeds ${EXPRUN_FUZZ_SEED_DIR}
    --seconds ${EXPRUN_FUZZ_SECONDS}
    --cmake-args "-DCMAKE_PREFIX_PATH=${CMAKE_PREFIX_PATH};-DTorch_DIR=${Torch_DIR}")
set_tests_properties(fuzz PROPERTIES LABELS fuzz TIMEOUT 1800 SKIP_RETURN_CODE 77)
if(NOT EXPRUN_FUZZ_CAMPAIGN)
  set_tests_properties(fuzz PROPERTIES DISABLED TRUE)
endif()
