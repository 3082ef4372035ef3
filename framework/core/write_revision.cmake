# cmake -DSOURCE_DIR=... -DOUTPUT=... -DVERSION=... -P write_revision.cmake
# Writes OUTPUT (core/version.cpp's definitions) only when its text changes, so that a build at an
# unchanged revision recompiles nothing.
execute_process(COMMAND git -C "${SOURCE_DIR}" describe --always --dirty --abbrev=12
                OUTPUT_VARIABLE revision OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET RESULT_VARIABLE rc)
if(NOT rc EQUAL 0 OR revision STREQUAL "")
  set(revision "unknown")
endif()
set(text "#include \"core/version.h\"\nconst char* angle::version() { return \"${VERSION}\"; }\nconst char* angle::revision() { return \"${revision}\"; }\n")
if(EXISTS "${OUTPUT}")
  file(READ "${OUTPUT}" old)
endif()
if(NOT old STREQUAL text)
  file(WRITE "${OUTPUT}" "${text}")
endif()
