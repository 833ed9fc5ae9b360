// Text cleaning and CLIP's pre-tokenisation pattern, over Unicode code points. The
// character tables (src/data/detail/text_tables.inc) come from Python's unicodedata and
// html modules through tools/make_text_tables.py.
#include <algorithm>
#include <cstdint>
#include <string>
#include <unordered_map>

#include "data/detail/clip_text.h"

namespace coca::data::detail {
namespace {

struct CodeRange {
  char32_t lo;
  char32_t hi;
};
struct LowerEntry {
  char32_t code;
  const char* lower;  // UTF-8
};
struct EntityEntry {
  const char* name;   // without '&', with ';' where the standard requires it
  const char* value;  // UTF-8
};
struct ComposeEntry {
  char32_t first;
  char32_t second;
  char32_t composed;
};
struct CharrefEntry {
  char32_t code;
  const char* value;  // UTF-8
};

#include "data/detail/text_tables.inc"

constexpr char32_t kReplacement = 0xFFFD;

template <size_t N>
bool in_ranges(const CodeRange (&ranges)[N], char32_t c) {
  const auto* end = ranges + N;
  const auto* it = std::upper_bound(ranges, end, c,
                                    [](char32_t v, const CodeRange& r) { return v < r.lo; });
  return it != ranges && c <= (it - 1)->hi;
}

bool is_cased(char32_t c) { return in_ranges(kCasedRanges, c); }

const std::unordered_map<std::string, std::string>& entity_map() {
  static const auto* map = [] {
    auto* m = new std::unordered_map<std::string, std::string>();
    for (const auto& e : kHtmlEntities) m->emplace(e.name, e.value);
    return m;
  }();
  return *map;
}

bool is_digit(char32_t c) { return c >= '0' && c <= '9'; }
bool is_hex(char32_t c) {
  return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}
int hex_value(char32_t c) {
  if (is_digit(c)) return static_cast<int>(c - '0');
  if (c >= 'a' && c <= 'f') return static_cast<int>(c - 'a' + 10);
  return static_cast<int>(c - 'A' + 10);
}

// Python html._replace_charref for a numeric reference with value `num` (saturated).
std::u32string numeric_charref(uint64_t num) {
  for (const auto& e : kInvalidCharrefs) {
    if (e.code == num) return utf8_to_code_points(e.value);
  }
  if ((num >= 0xD800 && num <= 0xDFFF) || num > 0x10FFFF) return std::u32string(1, kReplacement);
  const auto c = static_cast<char32_t>(num);
  if (in_ranges(kDroppedCharrefs, c)) return {};
  return std::u32string(1, c);
}

template <size_t N>
const LowerEntry* find_entry(const LowerEntry (&table)[N], char32_t c) {
  const auto* end = table + N;
  const auto* it = std::lower_bound(table, end, c,
                                    [](const LowerEntry& e, char32_t v) { return e.code < v; });
  return (it != end && it->code == c) ? it : nullptr;
}

// ftfy's fix_latin_ligatures table (chardata.LIGATURES).
const char32_t* latin_ligature(char32_t c) {
  switch (c) {
    case 0x132: return U"IJ";
    case 0x133: return U"ij";
    case 0xFB00: return U"ff";
    case 0xFB01: return U"fi";
    case 0xFB02: return U"fl";
    case 0xFB03: return U"ffi";
    case 0xFB04: return U"ffl";
    case 0xFB05: return U"\u017Ft";
    case 0xFB06: return U"st";
    default: return nullptr;
  }
}

// ftfy's remove_control_chars set (chardata.CONTROL_CHARS).
bool is_removed_control(char32_t c) {
  return c <= 0x08 || c == 0x0B || (c >= 0x0E && c <= 0x1F) || c == 0x7F ||
         (c >= 0x206A && c <= 0x206F) || c == 0xFEFF || (c >= 0xFFF9 && c <= 0xFFFC) ||
         (c >= 0x1D173 && c <= 0x1D17A) || (c >= 0xE0000 && c <= 0xE007F);
}

char32_t compose(char32_t a, char32_t b) {
  // Hangul syllables compose arithmetically (Unicode §3.12).
  constexpr char32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161, kTBase = 0x11A7;
  constexpr char32_t kLCount = 19, kVCount = 21, kTCount = 28;
  if (a >= kLBase && a < kLBase + kLCount && b >= kVBase && b < kVBase + kVCount) {
    return kSBase + ((a - kLBase) * kVCount + (b - kVBase)) * kTCount;
  }
  if (a >= kSBase && a < kSBase + kLCount * kVCount * kTCount && (a - kSBase) % kTCount == 0 &&
      b > kTBase && b < kTBase + kTCount) {
    return a + (b - kTBase);
  }
  const auto* end = kComposePairs + sizeof(kComposePairs) / sizeof(kComposePairs[0]);
  const auto* it = std::lower_bound(kComposePairs, end, std::make_pair(a, b),
                                    [](const ComposeEntry& e, std::pair<char32_t, char32_t> v) {
                                      return std::make_pair(e.first, e.second) < v;
                                    });
  return (it != end && it->first == a && it->second == b) ? it->composed : 0;
}

bool starts_with(const std::u32string& text, size_t pos, const char32_t* prefix) {
  for (size_t k = 0; prefix[k] != 0; ++k) {
    if (pos + k >= text.size() || text[pos + k] != prefix[k]) return false;
  }
  return true;
}

}  // namespace

std::u32string utf8_to_code_points(const std::string& text) {
  std::u32string out;
  out.reserve(text.size());
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  size_t i = 0;
  while (i < n) {
    const unsigned char b = s[i];
    if (b < 0x80) {
      out += static_cast<char32_t>(b);
      ++i;
      continue;
    }
    // Well-formed sequences per Unicode Table 3-7; anything else yields one U+FFFD per
    // maximal invalid prefix, as Python's errors="replace" does.
    int len = 0;
    char32_t c = 0;
    unsigned char lo = 0x80;
    unsigned char hi = 0xBF;
    if (b >= 0xC2 && b <= 0xDF) {
      len = 2, c = b & 0x1F;
    } else if (b >= 0xE0 && b <= 0xEF) {
      len = 3, c = b & 0x0F;
      if (b == 0xE0) lo = 0xA0;
      if (b == 0xED) hi = 0x9F;
    } else if (b >= 0xF0 && b <= 0xF4) {
      len = 4, c = b & 0x07;
      if (b == 0xF0) lo = 0x90;
      if (b == 0xF4) hi = 0x8F;
    } else {
      out += kReplacement;
      ++i;
      continue;
    }
    int k = 1;
    for (; k < len && i + static_cast<size_t>(k) < n; ++k) {
      const unsigned char cont = s[i + static_cast<size_t>(k)];
      const unsigned char min = k == 1 ? lo : 0x80;
      const unsigned char max = k == 1 ? hi : 0xBF;
      if (cont < min || cont > max) break;
      c = (c << 6) | (cont & 0x3F);
    }
    if (k < len) {
      out += kReplacement;
      i += static_cast<size_t>(k);
      continue;
    }
    out += c;
    i += static_cast<size_t>(len);
  }
  return out;
}

std::string code_points_to_utf8(const std::u32string& text) {
  std::string out;
  out.reserve(text.size());
  for (char32_t c : text) {
    if (c < 0x80) {
      out += static_cast<char>(c);
    } else if (c < 0x800) {
      out += static_cast<char>(0xC0 | (c >> 6));
      out += static_cast<char>(0x80 | (c & 0x3F));
    } else if (c < 0x10000) {
      out += static_cast<char>(0xE0 | (c >> 12));
      out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (c & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (c >> 18));
      out += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (c & 0x3F));
    }
  }
  return out;
}

bool is_letter(char32_t c) {
  if (c < 0x80) return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
  return in_ranges(kLetterRanges, c);
}
bool is_number(char32_t c) {
  if (c < 0x80) return is_digit(c);
  return in_ranges(kNumberRanges, c);
}
bool is_space(char32_t c) { return in_ranges(kSpaceRanges, c); }

std::u32string html_unescape(const std::u32string& text) {
  if (text.find(U'&') == std::u32string::npos) return text;
  std::u32string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    if (text[i] != U'&') {
      out += text[i++];
      continue;
    }
    const size_t start = i + 1;  // after '&'
    // Numeric: &#123;? or &#x1F;?
    if (start < text.size() && text[start] == U'#') {
      const bool hex = start + 1 < text.size() && (text[start + 1] == U'x' || text[start + 1] == U'X');
      size_t j = start + (hex ? 2 : 1);
      const size_t digits_begin = j;
      uint64_t num = 0;
      while (j < text.size() && (hex ? is_hex(text[j]) : is_digit(text[j]))) {
        num = num * (hex ? 16 : 10) + static_cast<uint64_t>(hex_value(text[j]));
        num = std::min<uint64_t>(num, 0x7FFFFFFF);  // saturate: anything this big is invalid
        ++j;
      }
      if (j == digits_begin) {  // "&#" or "&#x" without digits: not a reference
        out += text[i++];
        continue;
      }
      if (j < text.size() && text[j] == U';') ++j;
      out += numeric_charref(num);
      i = j;
      continue;
    }
    // Named: up to 32 characters other than \t \n \f space < & # ;, then an optional ';'.
    size_t j = start;
    while (j < text.size() && j - start < 32) {
      const char32_t c = text[j];
      if (c == U'\t' || c == U'\n' || c == U'\f' || c == U' ' || c == U'<' || c == U'&' ||
          c == U'#' || c == U';') {
        break;
      }
      ++j;
    }
    if (j == start) {
      out += text[i++];
      continue;
    }
    if (j < text.size() && text[j] == U';') ++j;
    const std::u32string name = text.substr(start, j - start);
    const auto& map = entity_map();
    const std::string name8 = code_points_to_utf8(name);
    auto it = map.find(name8);
    if (it != map.end()) {
      out += utf8_to_code_points(it->second);
    } else {
      // The longest prefix (of at least 2 characters) that is a name without ';'.
      bool found = false;
      for (size_t x = name.size() - 1; x >= 2 && x < name.size(); --x) {
        it = map.find(code_points_to_utf8(name.substr(0, x)));
        if (it != map.end()) {
          out += utf8_to_code_points(it->second);
          out += name.substr(x);
          found = true;
          break;
        }
      }
      if (!found) {
        out += U'&';
        out += name;
      }
    }
    i = j;
  }
  return out;
}

std::u32string to_lower(const std::u32string& text) {
  std::u32string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    const char32_t c = text[i];
    if (c < 0x80) {
      out += (c >= 'A' && c <= 'Z') ? c + 32 : c;
      continue;
    }
    if (c == 0x3A3) {  // Greek capital sigma: final form at the end of a word
      const bool after_cased = i > 0 && is_cased(text[i - 1]);
      const bool before_cased = i + 1 < text.size() && is_cased(text[i + 1]);
      out += (after_cased && !before_cased) ? char32_t{0x3C2} : char32_t{0x3C3};
      continue;
    }
    if (const auto* e = find_entry(kLowerTable, c)) {
      out += utf8_to_code_points(e->lower);
    } else {
      out += c;
    }
  }
  return out;
}

std::u32string ftfy_lite(const std::u32string& text) {
  std::u32string fixed;
  fixed.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    const char32_t c = text[i];
    if (c == 0x1B && i + 1 < text.size() && text[i + 1] == U'[') {  // terminal escape
      size_t j = i + 2;
      while (j < text.size() && (is_digit(text[j]) || text[j] == U';')) ++j;
      if (j < text.size() &&
          ((text[j] >= U'a' && text[j] <= U'z') || (text[j] >= U'A' && text[j] <= U'Z'))) {
        i = j;
        continue;
      }
    }
    std::u32string piece(1, c);
    if (c >= 0x80 && c <= 0x9F) {  // C1 control: read as Windows-1252
      for (const auto& e : kInvalidCharrefs) {
        if (e.code == c) piece = utf8_to_code_points(e.value);
      }
    } else if (const char32_t* lig = latin_ligature(c)) {
      piece = lig;
    } else if (const auto* w = find_entry(kWidthTable, c)) {
      piece = utf8_to_code_points(w->lower);
    }
    for (char32_t p : piece) {
      if (p >= 0x2018 && p <= 0x201B) p = U'\'';
      if (p >= 0x201C && p <= 0x201F) p = U'"';
      if (is_removed_control(p)) continue;
      fixed += p;
    }
  }
  // NFC: per-character canonical forms, then composition of adjacent pairs.
  std::u32string out;
  out.reserve(fixed.size());
  for (const char32_t c : fixed) {
    const auto* e = c < 0x80 ? nullptr : find_entry(kNfcTable, c);
    const std::u32string parts = e ? utf8_to_code_points(e->lower) : std::u32string(1, c);
    for (const char32_t p : parts) {
      const char32_t composed = (!out.empty() && p >= 0x300) ? compose(out.back(), p) : 0;
      if (composed != 0) {
        out.back() = composed;
      } else {
        out += p;
      }
    }
  }
  return out;
}

std::u32string clip_clean(const std::u32string& text) {
  const std::u32string unescaped = html_unescape(html_unescape(ftfy_lite(text)));
  std::u32string collapsed;
  collapsed.reserve(unescaped.size());
  bool in_space = false;
  for (char32_t c : unescaped) {
    if (is_space(c)) {
      in_space = true;
      continue;
    }
    if (in_space && !collapsed.empty()) collapsed += U' ';
    in_space = false;
    collapsed += c;
  }
  return to_lower(collapsed);
}

std::vector<std::u32string> clip_pre_tokenize(const std::u32string& text) {
  std::vector<std::u32string> pieces;
  size_t i = 0;
  const size_t n = text.size();
  while (i < n) {
    const char32_t c = text[i];
    if (c == U'<') {
      if (starts_with(text, i, U"<start_of_text>")) {
        pieces.emplace_back(U"<start_of_text>");
        i += 15;
        continue;
      }
      if (starts_with(text, i, U"<end_of_text>")) {
        pieces.emplace_back(U"<end_of_text>");
        i += 13;
        continue;
      }
    }
    if (c == U'\'') {
      size_t len = 0;
      for (const char32_t* suffix : {U"s", U"t", U"re", U"ve", U"m", U"ll", U"d"}) {
        if (starts_with(text, i + 1, suffix)) {
          len = 1 + std::char_traits<char32_t>::length(suffix);
          break;
        }
      }
      if (len > 0) {
        pieces.push_back(text.substr(i, len));
        i += len;
        continue;
      }
    }
    if (is_letter(c)) {
      size_t j = i + 1;
      while (j < n && is_letter(text[j])) ++j;
      pieces.push_back(text.substr(i, j - i));
      i = j;
      continue;
    }
    if (is_number(c)) {
      pieces.push_back(text.substr(i, 1));
      ++i;
      continue;
    }
    if (is_space(c)) {
      ++i;
      continue;
    }
    size_t j = i + 1;
    while (j < n && !is_space(text[j]) && !is_letter(text[j]) && !is_number(text[j])) ++j;
    pieces.push_back(text.substr(i, j - i));
    i = j;
  }
  return pieces;
}

}  // namespace coca::data::detail
