// Text cleaning and pre-tokenisation of CLIP's BPE tokenizer (open_clip SimpleTokenizer):
// html.unescape twice, whitespace collapsing, str.lower, and CLIP's splitting pattern.
// Private to src/data.
#pragma once

#include <string>
#include <vector>

namespace coca::data::detail {

/// UTF-8 -> code points; each invalid or truncated sequence becomes U+FFFD.
std::u32string utf8_to_code_points(const std::string& text);
std::string code_points_to_utf8(const std::u32string& text);

bool is_letter(char32_t c);  ///< Unicode category L*
bool is_number(char32_t c);  ///< Unicode category N*
bool is_space(char32_t c);   ///< Python str.isspace

/// Python's html.unescape (HTML5 named and numeric character references).
std::u32string html_unescape(const std::u32string& text);
/// Python's str.lower (full mappings, final sigma).
std::u32string to_lower(const std::u32string& text);
/// The deterministic parts of ftfy.fix_text (v6 defaults) that open_clip runs first:
/// terminal escapes removed, C1 controls read as Windows-1252, Latin ligatures split,
/// fullwidth forms narrowed, curly quotes straightened, control characters removed, NFC
/// (per-character forms and composition of adjacent pairs; combining marks are not
/// reordered). Mojibake repair (fix_encoding) and ftfy's own HTML unescape are not done.
std::u32string ftfy_lite(const std::u32string& text);
/// open_clip's clean: ftfy_lite, html_unescape twice, strip, collapse whitespace runs to one space,
/// strip, lower-case.
std::u32string clip_clean(const std::u32string& text);
/// re.findall of CLIP's pattern <start_of_text>|<end_of_text>|'s|'t|'re|'ve|'m|'ll|'d|
/// \p{L}+|\p{N}|[^\s\p{L}\p{N}]+ over cleaned text.
std::vector<std::u32string> clip_pre_tokenize(const std::u32string& text);

}  // namespace coca::data::detail
