# One CTest test per gtest suite, not per test case as gtest_discover_tests makes them. Every
# test process pays LibTorch's start-up (about 0.75 s on 2 cores, linked into every test
# executable through exprun_core or a plugin), which over ~870 cases was a third of the suite's
# run time; per suite it is paid ~180 times. `ctest -R Suite` still picks a suite, and the
# executable's own --gtest_filter picks a case.

set(EXPRUN_GTEST_LIST_SCRIPT ${CMAKE_CURRENT_LIST_DIR}/list_gtest_suites.cmake)

# exprun_add_gtest_suites(TARGET LABELS) lists TARGET's suites each time it is linked and has
# CTest add them (see list_gtest_suites.cmake); until it is built, CTest shows TARGET_NOT_BUILT.
function(exprun_add_gtest_suites target labels)
  set(suites_file ${CMAKE_CURRENT_BINARY_DIR}/${target}_suites.cmake)
  set(include_file ${CMAKE_CURRENT_BINARY_DIR}/${target}_suites_include.cmake)
  add_custom_command(TARGET ${target} POST_BUILD
    COMMAND ${CMAKE_COMMAND} -DEXE=$<TARGET_FILE:${target}> -DOUT=${suites_file}
      -DWORKING_DIRECTORY=${CMAKE_BINARY_DIR} -DLABELS=${labels} -P ${EXPRUN_GTEST_LIST_SCRIPT}
    BYPRODUCTS ${suites_file}
    VERBATIM)
  file(WRITE ${include_file}
    "if(EXISTS [=[${suites_file}]=])\n"
    "  include([=[${suites_file}]=])\n"
    "else()\n"
    "  add_test([=[${target}_NOT_BUILT]=] [=[${target}_NOT_BUILT]=])\n"
    "endif()\n")
  set_property(DIRECTORY APPEND PROPERTY TEST_INCLUDE_FILES ${include_file})
endfunction()
