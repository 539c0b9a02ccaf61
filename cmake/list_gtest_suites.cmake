# Run after a test executable is linked (cmake -P): lists its gtest suites and writes the CTest
# script that adds one test per suite, `SUITE` running `EXE --gtest_filter=SUITE.*`.
#   -DEXE=  the test executable        -DOUT=      the CTest script to write
#   -DWORKING_DIRECTORY=  where it runs -DLABELS=  its tests' labels
# Listing here rather than at `ctest` time (gtest_discover_tests' PRE_TEST mode) keeps the
# listing out of the test run, where it would start every executable once more, one by one.
execute_process(COMMAND "${EXE}" --gtest_list_tests
  OUTPUT_VARIABLE listing ERROR_VARIABLE errors RESULT_VARIABLE status)
if(NOT status EQUAL 0)
  message(FATAL_ERROR "${EXE} --gtest_list_tests failed (${status}):\n${errors}")
endif()

set(script "# Written by cmake/list_gtest_suites.cmake from ${EXE} --gtest_list_tests.\n")
string(REPLACE "\n" ";" lines "${listing}")
foreach(line IN LISTS lines)
  # A suite's line starts in column 0 and ends its name with '.'; a typed or parameterised
  # suite adds "  # TypeParam = ..." after it. Its cases follow, indented.
  if(line MATCHES "^([^ #][^ ]*)\\.( |$)")
    set(suite "${CMAKE_MATCH_1}")
    string(APPEND script
      "add_test([=[${suite}]=] [=[${EXE}]=] [=[--gtest_filter=${suite}.*]=])\n"
      "set_tests_properties([=[${suite}]=] PROPERTIES"
      " WORKING_DIRECTORY [=[${WORKING_DIRECTORY}]=] LABELS [=[${LABELS}]=]"
      " SKIP_RETURN_CODE 77)\n")
  endif()
endforeach()
file(WRITE "${OUT}.new" "${script}")
file(RENAME "${OUT}.new" "${OUT}")
