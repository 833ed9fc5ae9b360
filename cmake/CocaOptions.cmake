# Build options. Combinations that cannot work fail here, at configure time.
option(COCA_BUILD_TESTS "Build the coca_tests GoogleTest binary" ON)
option(COCA_BUILD_CLI "Build the coca executable" ON)
option(COCA_USE_PCH "Precompile LibTorch and standard headers" ON)
option(COCA_USE_CCACHE "Use ccache when it is installed" ON)
option(COCA_UNITY_BUILD "Compile sources in batches (unity build): a much faster clean build" ON)
set(COCA_UNITY_BATCH 8 CACHE STRING "Sources per unity-build translation unit")
option(COCA_WERROR "Treat warnings as errors" OFF)

if(COCA_USE_CCACHE)
  find_program(COCA_CCACHE ccache)
  if(COCA_CCACHE)
    # ccache reads its settings at build time, so they go on the launcher's command line:
    # precompiled headers need these sloppiness flags to be cacheable, and base_dir makes
    # hits portable between checkouts.
    set(CMAKE_CXX_COMPILER_LAUNCHER ${CMAKE_COMMAND} -E env
        "CCACHE_SLOPPINESS=pch_defines,time_macros,include_file_mtime,include_file_ctime"
        "CCACHE_BASEDIR=${CMAKE_SOURCE_DIR}" ${COCA_CCACHE})
  endif()
endif()

# Reference fixtures from open_clip (../shared/reference); tests skip when absent.
if(DEFINED ENV{COCA_REFERENCE_DIR})
  set(_coca_ref_default $ENV{COCA_REFERENCE_DIR})
else()
  get_filename_component(_coca_ref_default "${CMAKE_CURRENT_SOURCE_DIR}/../shared/reference" ABSOLUTE)
endif()
set(COCA_REFERENCE_DIR "${_coca_ref_default}" CACHE PATH "open_clip reference fixtures")
