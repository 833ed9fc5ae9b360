#include "coca/data/sources.h"

#include <cctype>
#include <stdexcept>

#include "coca/common/error.h"
#include "data/detail/source_factories.h"

namespace coca::data {

std::unique_ptr<Source> make_source(const SourceConfig& cfg, const std::string& key_path) {
  const std::string& type = cfg.type;
  if (type == "webdataset" || type.empty()) return detail::make_webdataset_source(cfg, key_path);
  if (type == "synthetic") return detail::make_synthetic_source(cfg, key_path);
  if (type == "manifest") return detail::make_manifest_source(cfg, key_path);
  if (type == "folder") return detail::make_folder_source(cfg, key_path);
  if (type == "coco") return detail::make_coco_source(cfg, key_path);
  if (type == "karpathy") return detail::make_karpathy_source(cfg, key_path);
  if (type == "idx") return detail::make_idx_source(cfg, key_path);
  throw ConfigError(key_path + ".type: unknown data source type '" + type +
                    "' (expected webdataset | manifest | folder | coco | karpathy | idx | "
                    "synthetic)");
}

namespace {

bool is_int(const std::string& s) {
  if (s.empty()) return false;
  size_t i = s[0] == '-' ? 1 : 0;
  if (i == s.size()) return false;
  for (; i < s.size(); ++i) {
    if (!std::isdigit(static_cast<unsigned char>(s[i]))) return false;
  }
  return true;
}

// Position of the '}' closing the '{' at `open`, or npos.
size_t matching_brace(const std::string& s, size_t open) {
  int depth = 0;
  for (size_t i = open; i < s.size(); ++i) {
    if (s[i] == '{') ++depth;
    if (s[i] == '}' && --depth == 0) return i;
  }
  return std::string::npos;
}

// Splits a brace body at its top-level commas.
std::vector<std::string> split_alternatives(const std::string& body) {
  std::vector<std::string> parts;
  int depth = 0;
  size_t start = 0;
  for (size_t i = 0; i < body.size(); ++i) {
    if (body[i] == '{') ++depth;
    if (body[i] == '}') --depth;
    if (body[i] == ',' && depth == 0) {
      parts.push_back(body.substr(start, i - start));
      start = i + 1;
    }
  }
  parts.push_back(body.substr(start));
  return parts;
}

// The items of a `{first..last}` body, or an empty list when `body` is not a range.
std::vector<std::string> range_items(const std::string& body, const std::string& pattern) {
  const auto dots = body.find("..");
  if (dots == std::string::npos) return {};
  const std::string a = body.substr(0, dots);
  const std::string b = body.substr(dots + 2);
  if (!is_int(a) || !is_int(b)) return {};
  const long long first = std::stoll(a);
  const long long last = std::stoll(b);
  const long long count = (first <= last ? last - first : first - last) + 1;
  if (count > 10'000'000) {
    throw std::invalid_argument("expand_braces: range {" + body + "} in '" + pattern +
                                "' has more than 10 million items");
  }
  // Zero padding as in bash: when either end is written with a leading zero, pad to the
  // longer of the two spellings.
  auto padded = [](const std::string& s) {
    const size_t d = s[0] == '-' ? 1 : 0;
    return s.size() > d + 1 && s[d] == '0';
  };
  const size_t width = (padded(a) || padded(b)) ? std::max(a.size(), b.size()) : 0;
  std::vector<std::string> items;
  items.reserve(static_cast<size_t>(count));
  const long long step = first <= last ? 1 : -1;
  for (long long v = first;; v += step) {
    std::string digits = std::to_string(v < 0 ? -v : v);
    const size_t sign = v < 0 ? 1 : 0;
    if (digits.size() + sign < width) digits.insert(0, width - digits.size() - sign, '0');
    items.push_back((v < 0 ? "-" : "") + digits);
    if (v == last) break;
  }
  return items;
}

void expand_into(const std::string& s, const std::string& pattern, std::vector<std::string>& out) {
  // The first brace group with a range or at least one top-level comma; other braces
  // stay literal (as in bash).
  size_t search = 0;
  while (true) {
    const size_t open = s.find('{', search);
    if (open == std::string::npos) {
      out.push_back(s);
      return;
    }
    const size_t close = matching_brace(s, open);
    if (close == std::string::npos) {
      throw std::invalid_argument("expand_braces: unbalanced '{' in '" + pattern + "'");
    }
    const std::string body = s.substr(open + 1, close - open - 1);
    std::vector<std::string> items = range_items(body, pattern);
    if (items.empty()) {
      const auto alts = split_alternatives(body);
      if (alts.size() > 1) items = alts;
    }
    if (items.empty()) {  // literal "{...}": look for a group after it
      search = open + 1;
      continue;
    }
    const std::string prefix = s.substr(0, open);
    const std::string suffix = s.substr(close + 1);
    for (const auto& item : items) {
      std::vector<std::string> rest;
      // An alternative may hold groups itself; the suffix holds the later groups.
      expand_into(item + suffix, pattern, rest);
      for (auto& r : rest) out.push_back(prefix + r);
    }
    return;
  }
}

}  // namespace

std::vector<std::string> expand_braces(const std::string& pattern) {
  std::vector<std::string> out;
  expand_into(pattern, pattern, out);
  return out;
}

}  // namespace coca::data
