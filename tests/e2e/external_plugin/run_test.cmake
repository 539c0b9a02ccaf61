# Builds a plugin project outside the exprun tree against the SDK package alone, runs the
# project's own tests when it has any, then lists, describes and trains with the plugin, the way
# docs/writing-a-plugin.md tells a plugin author to. Serves two CTest tests:
#
#   external_plugin      SOURCE_DIR is the project (tests/e2e/external_plugin)
#   docs_plugin_example  DOC is docs/writing-a-plugin.md; the project is the files it shows,
#                        each a code block after a <!-- file: PATH --> line, written under
#                        WORK_DIR; PROJECT is their folder (l1_loss)
#
# Also given: WORK_DIR, SDK_DIR (the build tree's SDK package), EXPRUN, GENERATOR, PLUGIN (the
# full name, losses/l1), PARAMETERS (comma-separated, what describe must list), EXPERIMENT (in
# the project folder) and LIBRARY_DIR (the library's folder inside the build folder).
# Every command runs in WORK_DIR with the paths the document uses, so that its commands are the
# ones tested.
cmake_minimum_required(VERSION 3.22)
foreach(var WORK_DIR SDK_DIR EXPRUN GENERATOR PLUGIN PARAMETERS EXPERIMENT LIBRARY_DIR)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "run_test.cmake needs -D${var}=...")
  endif()
endforeach()
file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")

function(run_step what)
  execute_process(COMMAND ${ARGN} WORKING_DIRECTORY "${WORK_DIR}" RESULT_VARIABLE rc
    OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${what} failed (${rc}):\n${out}\n${err}")
  endif()
  set(step_output "${out}${err}" PARENT_SCOPE)
endfunction()

# Writes each code block of `doc` that follows a "<!-- file: PATH -->" line to `into`/PATH.
function(extract_files doc into)
  file(READ "${doc}" rest)
  set(marker "<!-- file: ")
  string(LENGTH "${marker}" marker_length)
  set(written "")
  while(TRUE)
    string(FIND "${rest}" "${marker}" at)
    if(at EQUAL -1)
      break()
    endif()
    math(EXPR at "${at} + ${marker_length}")
    string(SUBSTRING "${rest}" ${at} -1 rest)
    string(FIND "${rest}" " -->" end)
    string(SUBSTRING "${rest}" 0 ${end} name)
    if(end EQUAL -1 OR NOT name MATCHES "^[A-Za-z0-9_][A-Za-z0-9_./-]*$" OR name MATCHES "\\.\\.")
      message(FATAL_ERROR "${doc}: expected '${marker}RELATIVE/PATH -->', found '${marker}${name}'")
    endif()
    math(EXPR end "${end} + 4")
    string(SUBSTRING "${rest}" ${end} -1 rest)
    # Only blank lines may separate the marker from its block.
    string(REGEX MATCH "^[ \n]*```[a-z]*\n" fence "${rest}")
    if(fence STREQUAL "")
      message(FATAL_ERROR "${doc}: the line '${marker}${name} -->' must be followed by a ``` code block")
    endif()
    string(LENGTH "${fence}" fence_length)
    string(SUBSTRING "${rest}" ${fence_length} -1 rest)
    string(FIND "${rest}" "\n```" close)
    if(close EQUAL -1)
      message(FATAL_ERROR "${doc}: the code block of ${name} is not closed with ```")
    endif()
    math(EXPR close "${close} + 1")
    string(SUBSTRING "${rest}" 0 ${close} body)
    string(SUBSTRING "${rest}" ${close} -1 rest)
    file(WRITE "${into}/${name}" "${body}")
    list(APPEND written "${name}")
  endwhile()
  if(written STREQUAL "")
    message(FATAL_ERROR "${doc}: no '${marker}PATH -->' lines, so no example to build")
  endif()
  string(JOIN ", " written ${written})
  message(STATUS "from ${doc}: ${written}")
endfunction()

if(DEFINED DOC)
  extract_files("${DOC}" "${WORK_DIR}")
  set(project "${PROJECT}")
  set(build "${PROJECT}/build")
else()
  set(project "${SOURCE_DIR}")
  set(build "${WORK_DIR}/build")
endif()
set(library_dir "${build}/${LIBRARY_DIR}")
# For checking files; the commands keep the relative paths.
cmake_path(ABSOLUTE_PATH build BASE_DIRECTORY "${WORK_DIR}" OUTPUT_VARIABLE build_path)
cmake_path(ABSOLUTE_PATH library_dir BASE_DIRECTORY "${WORK_DIR}" NORMALIZE
  OUTPUT_VARIABLE library_path)
string(REPLACE "/" "-" library "exprun-${PLUGIN}.so")
string(REGEX REPLACE ".*/" "" plugin_name "${PLUGIN}")

run_step("configuring the plugin" ${CMAKE_COMMAND} -S "${project}" -B "${build}"
  -G "${GENERATOR}" -DCMAKE_BUILD_TYPE=Release "-Dexprun_sdk_DIR=${SDK_DIR}")
if(step_output MATCHES "exprun_sdk: this project compiles C\\+\\+ with")
  message(FATAL_ERROR "configuring with exprun's own compiler warned of another:\n${step_output}")
endif()
run_step("building the plugin" ${CMAKE_COMMAND} --build "${build}")
if(NOT EXISTS "${library_path}/${library}")
  message(FATAL_ERROR "the build did not leave ${library} in ${library_path}")
endif()

# The project's own unit tests, as its author runs them. The document's example has some.
if(DEFINED DOC OR EXISTS "${build_path}/CTestTestfile.cmake")
  run_step("the plugin's unit tests" ${CMAKE_CTEST_COMMAND} --test-dir "${build}"
    --output-on-failure --no-tests=error)
  message(STATUS "the plugin's unit tests:\n${step_output}")
endif()

run_step("listing the plugins" "${EXPRUN}" plugins losses --plugins "${library_dir}")
if(NOT step_output MATCHES "${PLUGIN}" OR step_output MATCHES "could not load")
  message(FATAL_ERROR "`exprun plugins` did not load ${PLUGIN}:\n${step_output}")
endif()

run_step("describing the plugin" "${EXPRUN}" describe "${PLUGIN}" --plugins "${library_dir}")
string(REPLACE "," ";" parameters "${PARAMETERS}")
foreach(parameter ${parameters})
  if(NOT step_output MATCHES "${parameter}")
    message(FATAL_ERROR "describe did not list the parameter ${parameter}:\n${step_output}")
  endif()
endforeach()

# A misspelt parameter of the plugin is found as for a built-in one.
list(GET parameters 0 first)
string(SUBSTRING "${first}" 1 -1 misspelt)
execute_process(COMMAND "${EXPRUN}" plan "${project}/${EXPERIMENT}" --plugins "${library_dir}"
  --set "loss.${misspelt}=1" WORKING_DIRECTORY "${WORK_DIR}" RESULT_VARIABLE rc
  OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(rc EQUAL 0 OR NOT err MATCHES "${PLUGIN} has no such parameter; did you mean '${first}'")
  message(FATAL_ERROR "a misspelt parameter was not refused with a suggestion (${rc}):\n${out}${err}")
endif()

run_step("training with the plugin" "${EXPRUN}" run "${project}/${EXPERIMENT}"
  --plugins "${library_dir}")

file(GLOB reports "${WORK_DIR}/results/*/*/report.json")
list(LENGTH reports count)
if(NOT count EQUAL 1)
  message(FATAL_ERROR "expected one report under ${WORK_DIR}/results, found ${count}")
endif()
file(READ "${reports}" report)
string(JSON status GET "${report}" status)
string(JSON loss_name GET "${report}" config stages 0 loss plugin)
string(JSON mre GET "${report}" stages 0 best overall mre)
if(NOT status STREQUAL "completed" OR NOT loss_name STREQUAL plugin_name)
  message(FATAL_ERROR "unexpected report: status ${status}, loss ${loss_name}")
endif()
message(STATUS "${PLUGIN} trained a stage: status ${status}, best MRE ${mre} mm")
