function(coca_set_warnings target)
  if(CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
    target_compile_options(${target} PRIVATE -Wall -Wextra -Wno-unused-parameter
      $<$<BOOL:${COCA_WERROR}>:-Werror>)
  endif()
endfunction()
