# Compile-time measures (issue #2: a clean build on 2 cores stays well under 10 minutes).
#
# Loading the ~600 MB precompiled LibTorch header costs GCC ~4 s of CPU per translation unit,
# about as much as compiling a typical source file of ours, so:
#  - one precompiled header is built once (target coca_pch) and reused by coca_core, coca and
#    coca_tests (`coca_use_pch`);
#  - each of those targets is compiled as a unity build (`coca_unity_build`): batches of
#    COCA_UNITY_BATCH sources per translation unit, so the header is loaded once per batch and
#    LibTorch's inline code is compiled once per batch. Names in anonymous namespaces must
#    therefore be unique across the files of a target. -DCOCA_UNITY_BUILD=OFF compiles file by
#    file (quicker rebuilds while editing one file).

if(COCA_USE_PCH)
  # The precompiled header's own target. Its compile flags are the common subset of its users':
  # GCC rejects a header precompiled with a macro its user does not define identically
  # (-Winvalid-pch warns), so only the LibTorch and fmt usage requirements and coca_core's
  # public definitions go in here; every user links coca_core (or is coca_core).
  file(WRITE ${PROJECT_BINARY_DIR}/coca_pch.cpp
       "// Anchor of the precompiled-header target (see cmake/CocaBuildSpeed.cmake).\n")
  add_library(coca_pch OBJECT ${PROJECT_BINARY_DIR}/coca_pch.cpp)
  target_link_libraries(coca_pch PRIVATE ${TORCH_LIBRARIES} fmt::fmt)
  target_compile_options(coca_pch PRIVATE ${COCA_TORCH_CXX_FLAGS}
    $<$<CXX_COMPILER_ID:GNU>:-fpch-preprocess>)
  target_compile_definitions(coca_pch PRIVATE SPDLOG_FMT_EXTERNAL
    $<$<BOOL:${COCA_HAVE_GLOO}>:COCA_HAVE_GLOO=1>
    $<$<BOOL:${COCA_HAVE_NCCL}>:COCA_HAVE_NCCL=1>)
  target_precompile_headers(coca_pch PRIVATE
    <torch/torch.h> <string> <vector> <memory> <unordered_map> <fmt/format.h>)
endif()

# Compiles `target` with coca_pch's precompiled header (when COCA_USE_PCH).
function(coca_use_pch target)
  if(COCA_USE_PCH)
    # -fpch-preprocess lets ccache cache objects built with the precompiled header.
    target_compile_options(${target} PRIVATE $<$<CXX_COMPILER_ID:GNU>:-fpch-preprocess>)
    target_precompile_headers(${target} REUSE_FROM coca_pch)
  endif()
endfunction()

# Compiles `target` in batches of COCA_UNITY_BATCH sources (when COCA_UNITY_BUILD).
function(coca_unity_build target)
  if(COCA_UNITY_BUILD)
    set_target_properties(${target} PROPERTIES UNITY_BUILD ON
      UNITY_BUILD_BATCH_SIZE ${COCA_UNITY_BATCH})
  endif()
endfunction()
