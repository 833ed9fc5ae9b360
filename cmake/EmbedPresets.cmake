# cmake -DOUT=presets.cpp -DFILES="a.yaml|b.yaml" -P EmbedPresets.cmake
# Writes a translation unit holding each model preset's YAML text.
string(REPLACE "|" ";" FILES "${FILES}")
set(body "")
foreach(f ${FILES})
  get_filename_component(name ${f} NAME_WE)
  file(READ ${f} text)
  string(APPEND body "    {\"${name}\", R\"coca_preset(${text})coca_preset\"},\n")
endforeach()
file(WRITE ${OUT}.new "// Generated from configs/model/*.yaml by cmake/EmbedPresets.cmake. Do not edit.
#include \"config/detail/presets.h\"

#include <map>

namespace coca::config::detail {
namespace {
const std::map<std::string, std::string>& presets() {
  static const std::map<std::string, std::string> table = {
${body}  };
  return table;
}
}  // namespace

const std::string* find_preset(const std::string& name) {
  const auto it = presets().find(name);
  return it == presets().end() ? nullptr : &it->second;
}

std::vector<std::string> preset_names() {
  std::vector<std::string> names;
  for (const auto& kv : presets()) names.push_back(kv.first);
  return names;
}

}  // namespace coca::config::detail
")
execute_process(COMMAND ${CMAKE_COMMAND} -E copy_if_different ${OUT}.new ${OUT})
file(REMOVE ${OUT}.new)
