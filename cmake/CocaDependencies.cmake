# Every dependency is a Debian package (tools/setup.sh installs them); LibTorch may also be an
# official 2.x build given through CMAKE_PREFIX_PATH or Torch_DIR.
find_package(Threads REQUIRED)
find_package(Torch REQUIRED)
# TORCH_CXX_FLAGS carries the C++ ABI flag; it must reach every target that includes torch.
separate_arguments(COCA_TORCH_CXX_FLAGS UNIX_COMMAND "${TORCH_CXX_FLAGS}")
find_package(yaml-cpp REQUIRED)
find_package(fmt REQUIRED)
find_package(spdlog REQUIRED)
find_package(nlohmann_json 3 REQUIRED)
find_package(CLI11 QUIET CONFIG)
find_package(OpenCV REQUIRED COMPONENTS core imgproc imgcodecs)
# SentencePiece is linked only into the coca_spm shim, which coca_core dlopens with
# RTLD_DEEPBIND: libsentencepiece exports its bundled protobuf-lite, and loading it
# globally next to LibTorch's libprotobuf crashes at start-up.
find_package(SentencePiece REQUIRED)
find_package(LibArchive REQUIRED)
# zlib reads CLIP's gzip-compressed BPE vocabulary.
find_package(ZLIB REQUIRED)
if(COCA_BUILD_TESTS)
  find_package(GTest REQUIRED)
  include(GoogleTest)
endif()

# Distributed backends: compiled in when this LibTorch ships them.
include(CheckIncludeFileCXX)
set(COCA_HAVE_GLOO OFF)
set(COCA_HAVE_NCCL OFF)
foreach(dir ${TORCH_INCLUDE_DIRS})
  if(EXISTS "${dir}/torch/csrc/distributed/c10d/ProcessGroupGloo.hpp")
    find_path(COCA_GLOO_INCLUDE gloo/config.h PATHS ${TORCH_INCLUDE_DIRS})
    if(COCA_GLOO_INCLUDE)
      set(COCA_HAVE_GLOO ON)
    endif()
  endif()
  if(EXISTS "${dir}/torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp" AND CUDA_FOUND)
    set(COCA_HAVE_NCCL ON)
  endif()
endforeach()
if(CUDA_FOUND OR TORCH_CUDA_LIBRARIES)
  set(COCA_HAVE_CUDA ON)
else()
  set(COCA_HAVE_CUDA OFF)
endif()

find_package(Git QUIET)
set(COCA_GIT_SHA "unknown")
if(GIT_FOUND)
  execute_process(COMMAND ${GIT_EXECUTABLE} rev-parse --short=12 HEAD
    WORKING_DIRECTORY ${PROJECT_SOURCE_DIR} OUTPUT_VARIABLE _sha
    OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET RESULT_VARIABLE _rc)
  if(_rc EQUAL 0 AND _sha)
    set(COCA_GIT_SHA ${_sha})
  endif()
endif()
