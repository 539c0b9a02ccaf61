# Builds tests/external_plugin against the SDK package alone, then trains a stage with it.
# Called by CTest with SOURCE_DIR, WORK_DIR, SDK_DIR, EXPRUN and GENERATOR.
file(REMOVE_RECURSE "${WORK_DIR}")

function(run_step what)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${what} failed (${rc}):\n${out}\n${err}")
  endif()
  set(step_output "${out}${err}" PARENT_SCOPE)
endfunction()

run_step("configuring the plugin" ${CMAKE_COMMAND} -S "${SOURCE_DIR}" -B "${WORK_DIR}/build"
  -G "${GENERATOR}" -DCMAKE_BUILD_TYPE=Release "-Dexprun_sdk_DIR=${SDK_DIR}")
run_step("building the plugin" ${CMAKE_COMMAND} --build "${WORK_DIR}/build")

run_step("describing the plugin" "${EXPRUN}" describe losses/external_l1
  --plugins "${WORK_DIR}/build/plugins")
if(NOT step_output MATCHES "scale")
  message(FATAL_ERROR "describe did not list the plugin's parameter:\n${step_output}")
endif()

run_step("training with the plugin" "${EXPRUN}" run "${SOURCE_DIR}/experiment.toml"
  --plugins "${WORK_DIR}/build/plugins" --output "${WORK_DIR}/results")

file(GLOB reports "${WORK_DIR}/results/external_plugin/*/report.json")
list(LENGTH reports count)
if(NOT count EQUAL 1)
  message(FATAL_ERROR "expected one report under ${WORK_DIR}/results, found ${count}")
endif()
file(READ "${reports}" report)
string(JSON status GET "${report}" status)
string(JSON loss_name GET "${report}" config stages 0 loss plugin)
string(JSON mre GET "${report}" stages 0 best overall mre)
if(NOT status STREQUAL "completed" OR NOT loss_name STREQUAL "external_l1")
  message(FATAL_ERROR "unexpected report: status ${status}, loss ${loss_name}")
endif()
message(STATUS "external plugin trained a stage: status ${status}, best MRE ${mre} mm")
