# Configures a plugin project against the build tree's SDK package and checks what
# find_package(exprun_sdk) says about the project's compiler (docs/writing-a-plugin.md,
# "Building out of tree"). Configure only: nothing is built.
#
#   EXPECT=warning  COMPILER is not exprun's: a warning names both compilers and the fix
#   EXPECT=quiet    COMPILER is exprun's: no such warning
#   EXPECT=no_cxx   a project without the CXX language: find_package fails and says so
#   EXPECT=install  the package as `cmake --install` leaves it, found through
#                   CMAKE_PREFIX_PATH instead of the build tree
#   EXPECT=other_torch  the project points Torch_DIR at another LibTorch (a stand-in package
#                   of version 0.0.1): find_package fails and names both
#
# Also given: SOURCE_DIR (the plugin project; not used for no_cxx), WORK_DIR, SDK_DIR,
# GENERATOR and EXPRUN_COMPILER (the compiler exprun was built with).
cmake_minimum_required(VERSION 3.22)
foreach(var EXPECT WORK_DIR SDK_DIR GENERATOR EXPRUN_COMPILER)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "configure_test.cmake needs -D${var}=...")
  endif()
endforeach()
file(REMOVE_RECURSE "${WORK_DIR}")

if(EXPECT STREQUAL "no_cxx")
  # The mistake it stands for: a project() line that names C only.
  set(SOURCE_DIR "${WORK_DIR}/project")
  file(WRITE "${SOURCE_DIR}/CMakeLists.txt"
    "cmake_minimum_required(VERSION 3.22)\nproject(c_only LANGUAGES C)\n"
    "find_package(exprun_sdk REQUIRED)\n")
  set(configure_args "-Dexprun_sdk_DIR=${SDK_DIR}")
elseif(EXPECT STREQUAL "install")
  set(prefix "${WORK_DIR}/prefix")
  execute_process(COMMAND ${CMAKE_COMMAND} --install "${SDK_DIR}" --prefix "${prefix}"
    RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "installing ${SDK_DIR} failed (${rc}):\n${out}\n${err}")
  endif()
  set(configure_args "-DCMAKE_CXX_COMPILER=${EXPRUN_COMPILER}" "-DCMAKE_PREFIX_PATH=${prefix}")
elseif(EXPECT STREQUAL "other_torch")
  set(other "${WORK_DIR}/other_torch")
  file(WRITE "${other}/TorchConfig.cmake" "set(Torch_FOUND TRUE)\n")
  file(WRITE "${other}/TorchConfigVersion.cmake"
    "set(PACKAGE_VERSION 0.0.1)\nset(PACKAGE_VERSION_COMPATIBLE TRUE)\n")
  set(configure_args "-DCMAKE_CXX_COMPILER=${EXPRUN_COMPILER}" "-Dexprun_sdk_DIR=${SDK_DIR}"
    "-DTorch_DIR=${other}")
else()
  set(configure_args "-DCMAKE_CXX_COMPILER=${COMPILER}" "-Dexprun_sdk_DIR=${SDK_DIR}")
endif()

execute_process(COMMAND ${CMAKE_COMMAND} -S "${SOURCE_DIR}" -B "${WORK_DIR}/build"
  -G "${GENERATOR}" ${configure_args}
  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
# CMake wraps messages to its own line width.
string(REGEX REPLACE "[ \n]+" " " said "${out}${err}")

function(expect_said text)
  string(FIND "${said}" "${text}" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "expected the configure output to say '${text}' (exit ${rc}):\n${out}${err}")
  endif()
endfunction()

set(warning "exprun_sdk: this project compiles C++ with")
if(EXPECT STREQUAL "warning")
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "the warning should not stop the configure (exit ${rc}):\n${out}${err}")
  endif()
  expect_said("CMake Warning at ${SDK_DIR}/exprun_sdkConfig.cmake")
  expect_said("${warning}")
  expect_said("but exprun was built with")
  expect_said("(${EXPRUN_COMPILER})")
  expect_said("so exprun will refuse to load a plugin built here (\"compiler differs\")")
  expect_said("-DCMAKE_CXX_COMPILER=${EXPRUN_COMPILER}")
elseif(EXPECT STREQUAL "quiet")
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "configuring with exprun's compiler failed (exit ${rc}):\n${out}${err}")
  endif()
  string(FIND "${said}" "${warning}" at)
  if(NOT at EQUAL -1)
    message(FATAL_ERROR "exprun's own compiler was warned about:\n${out}${err}")
  endif()
elseif(EXPECT STREQUAL "no_cxx")
  if(rc EQUAL 0)
    message(FATAL_ERROR "find_package(exprun_sdk) succeeded without C++:\n${out}${err}")
  endif()
  expect_said("this project has not enabled the CXX language")
  expect_said("project(my_plugin LANGUAGES CXX)")
  expect_said("-DCMAKE_CXX_COMPILER=${EXPRUN_COMPILER}")
elseif(EXPECT STREQUAL "install")
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "configuring against the install tree failed (exit ${rc}):\n${out}${err}")
  endif()
  file(STRINGS "${WORK_DIR}/build/CMakeCache.txt" found REGEX "^exprun_sdk_DIR:")
  if(NOT found STREQUAL "exprun_sdk_DIR:PATH=${prefix}/lib/cmake/exprun_sdk")
    message(FATAL_ERROR "expected the package from ${prefix}/lib/cmake/exprun_sdk, found '${found}'")
  endif()
  string(FIND "${said}" "${warning}" at)
  if(NOT at EQUAL -1)
    message(FATAL_ERROR "exprun's own compiler was warned about:\n${out}${err}")
  endif()
elseif(EXPECT STREQUAL "other_torch")
  if(rc EQUAL 0)
    message(FATAL_ERROR "find_package(exprun_sdk) accepted another LibTorch:\n${out}${err}")
  endif()
  expect_said("this project found LibTorch 0.0.1 (${other})")
  expect_said("but exprun was built with LibTorch")
  expect_said("a plugin must use the same one: configure with -DTorch_DIR=")
else()
  message(FATAL_ERROR
    "EXPECT must be warning, quiet, no_cxx, install or other_torch, found '${EXPECT}'")
endif()
message(STATUS "configure output as expected (${EXPECT})")
