# Compiles a plugin with a plain compiler command, as someone without CMake would: the SDK and
# LibTorch headers and nothing else, in particular no -D_GLIBCXX_USE_CXX11_ABI. The library's
# tag must then hold libstdc++'s own value (never "cxx11abi-na"), equal exprun's own tag, and
# load (docs/writing-a-plugin.md, "The ABI tag").
#
# Given: EXPRUN, CXX (the compiler exprun was built with), SDK_INCLUDE, TORCH_INCLUDES
# ('|'-separated), SOURCE (a loss plugin defining losses/external_l1) and WORK_DIR.
cmake_minimum_required(VERSION 3.22)
foreach(var EXPRUN CXX SDK_INCLUDE TORCH_INCLUDES SOURCE WORK_DIR)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "hand_written_test.cmake needs -D${var}=...")
  endif()
endforeach()
file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")

set(includes "-I${SDK_INCLUDE}")
string(REPLACE "|" ";" torch_includes "${TORCH_INCLUDES}")
foreach(dir ${torch_includes})
  list(APPEND includes "-I${dir}")
endforeach()
set(library "${WORK_DIR}/exprun-losses-external_l1.so")

# -O0: the test is about the tag, and an optimised torch translation unit takes minutes here.
execute_process(COMMAND "${CXX}" -std=c++20 -O0 -fPIC -shared ${includes} "${SOURCE}"
  -o "${library}" RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "the hand-written compile failed (${rc}):\n${out}\n${err}")
endif()

# The tag is a string literal in the library.
file(STRINGS "${library}" tags REGEX "^exprun-sdk-[0-9]+\\.[0-9]+;torch-")
list(REMOVE_DUPLICATES tags)
execute_process(COMMAND "${EXPRUN}" version RESULT_VARIABLE rc OUTPUT_VARIABLE version)
string(REGEX MATCH "abi tag: +([^\n]+)" line "${version}")
set(ours "${CMAKE_MATCH_1}")
if(NOT rc EQUAL 0 OR ours STREQUAL "")
  message(FATAL_ERROR "`exprun version` printed no abi tag (${rc}):\n${version}")
endif()
if(NOT tags STREQUAL ours)
  message(FATAL_ERROR "the hand-written plugin's tag is '${tags}', exprun's is '${ours}'")
endif()
if(tags MATCHES "cxx11abi-na")
  message(FATAL_ERROR "the hand-written plugin's tag has no string ABI value: ${tags}")
endif()

execute_process(COMMAND "${EXPRUN}" plugins losses --plugins "${WORK_DIR}" RESULT_VARIABLE rc
  OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 0 OR NOT out MATCHES "losses/external_l1" OR out MATCHES "could not load")
  message(FATAL_ERROR "exprun did not load the hand-written plugin (${rc}):\n${out}\n${err}")
endif()
message(STATUS "a hand-written compile is tagged ${tags} and loads")
