#include "coca/io/safetensors.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "coca/common/error.h"
#include "test_utils.h"

namespace coca::io {
namespace {

using coca::testing::read_file;
using coca::testing::reference_dir;
using coca::testing::TempDir;
using coca::testing::write_file;

std::string u64_le(uint64_t v) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((v >> (8 * i)) & 0xff);
  return out;
}

template <typename T>
std::string le_bytes(std::initializer_list<T> values) {
  std::string out;
  for (T v : values) {
    char b[sizeof(T)];
    std::memcpy(b, &v, sizeof(T));  // the test host is little-endian, like the format
    out.append(b, sizeof(T));
  }
  return out;
}

/// A file made by hand: length field, header text (padded with `pad` spaces), data.
std::string raw_file(const std::string& header, const std::string& data, size_t pad = 0) {
  const std::string h = header + std::string(pad, ' ');
  return u64_le(h.size()) + h + data;
}

/// The message of the IoError thrown by reading `path`, or "" when nothing is thrown.
std::string read_error(const std::string& path) {
  try {
    read_safetensors(path);
  } catch (const IoError& e) {
    EXPECT_EQ(e.file(), path);
    return e.what();
  }
  return "";
}

TEST(SafetensorsTest, RoundTripsEveryDtypeShapeAndMetadata) {
  TempDir dir;
  const std::string path = (dir / "all.safetensors").string();
  auto f32 = torch::arange(12, torch::kFloat).reshape({3, 4}) * 0.5 - 1.0;
  std::vector<std::pair<std::string, torch::Tensor>> tensors = {
      {"z.f32", f32},
      {"f64", torch::tensor({1.0 / 3.0, -2.5e300}, torch::kDouble)},
      {"f16", torch::tensor({1.0, -0.5, 65504.0}, torch::kFloat).to(torch::kHalf)},
      {"bf16", torch::tensor({1.0, -3.0, 1e30}, torch::kFloat).to(torch::kBFloat16)},
      {"i64", torch::tensor({int64_t(1) << 40, int64_t(-7)}, torch::kLong)},
      {"i32", torch::tensor({-2, 2147483647}, torch::kInt)},
      {"i16", torch::tensor({-300, 300}, torch::kShort)},
      {"i8", torch::tensor({-128, 127}, torch::kChar)},
      {"u8", torch::tensor({0, 255}, torch::kByte)},
      {"bool", torch::tensor({true, false, true})},
      {"logit_scale", torch::tensor(2.6592f)},                  // 0-d, as in open_clip
      {"empty", torch::zeros({0, 3})},                          // no bytes
      {"empty2", torch::zeros({2, 0}, torch::kLong)},           // no bytes, same offset
      {"transposed", f32.t()},                                  // non-contiguous
      {"strided", torch::arange(10, torch::kInt).slice(0, 1, 9, 3)},  // offset + stride
      {"expanded", torch::tensor({7.0}).expand({2, 3})},        // stride 0
  };
  const std::map<std::string, std::string> metadata = {{"format", "pt"},
                                                       {"config", "{\"a\": [1, 2]}\n\"q\""}};
  write_safetensors(path, tensors, metadata);
  const SafetensorsFile file = read_safetensors(path);

  ASSERT_EQ(file.names.size(), tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    const auto& [name, want] = tensors[i];
    EXPECT_EQ(file.names[i], name) << "file order must be the written order";
    const torch::Tensor& got = file.tensors.at(name);
    EXPECT_EQ(got.scalar_type(), want.scalar_type()) << name;
    EXPECT_EQ(got.sizes(), want.sizes()) << name;
    EXPECT_TRUE(got.is_contiguous()) << name;
    EXPECT_TRUE(torch::equal(got, want)) << name;
  }
  EXPECT_EQ(file.tensors.at("logit_scale").dim(), 0);
  EXPECT_EQ(file.metadata, metadata);
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
}

TEST(SafetensorsTest, ReadTensorsOwnTheirMemory) {
  TempDir dir;
  const std::string path = (dir / "a.safetensors").string();
  write_safetensors(path, {{"w", torch::ones({4})}});
  torch::Tensor w = read_safetensors(path).tensors.at("w");
  std::filesystem::remove(path);
  w.add_(1.0);  // neither the file nor a mapping backs it
  EXPECT_TRUE(torch::equal(w, torch::full({4}, 2.0)));
}

// Expected bytes from the reference implementation's own unit tests
// (huggingface/safetensors, safetensors/src/tensor.rs: test_serialization,
// test_serialization_forced_alignement, test_empty), rebuilt here as text + floats.
TEST(SafetensorsTest, MatchesReferenceImplementationBytes) {
  TempDir dir;
  const std::string floats = le_bytes<float>({0, 1, 2, 3, 4, 5});
  const auto data = torch::arange(6, torch::kFloat);
  struct Case {
    std::string name;
    std::vector<std::pair<std::string, torch::Tensor>> tensors;
    std::map<std::string, std::string> metadata;
    std::string bytes;
  };
  const std::vector<Case> cases = {
      {"serialization",
       {{"attn.0", data.reshape({1, 2, 3})}},
       {},
       u64_le(64) + "{\"attn.0\":{\"dtype\":\"F32\",\"shape\":[1,2,3],\"data_offsets\":[0,24]}}" +
           floats},
      {"forced_alignment",
       {{"attn0", data.reshape({1, 1, 2, 3})}},
       {},
       u64_le(72) +
           "{\"attn0\":{\"dtype\":\"F32\",\"shape\":[1,1,2,3],\"data_offsets\":[0,24]}}       " +
           floats},
      {"empty", {}, {}, u64_le(8) + "{}      "},
      {"empty_metadata",
       {},
       {{"framework", "pt"}},
       u64_le(40) + "{\"__metadata__\":{\"framework\":\"pt\"}}     "},
  };
  for (const auto& c : cases) {
    const std::string path = (dir / (c.name + ".safetensors")).string();
    write_safetensors(path, c.tensors, c.metadata);
    EXPECT_EQ(read_file(path), c.bytes) << c.name;
    const SafetensorsFile back = read_safetensors(path);
    EXPECT_EQ(back.names.size(), c.tensors.size()) << c.name;
    EXPECT_EQ(back.metadata, c.metadata) << c.name;
    for (const auto& [name, t] : c.tensors) EXPECT_TRUE(torch::equal(back.tensors.at(name), t));
  }
}

// Bit patterns worked out by hand: F16 1.0 = 0x3C00, BF16 -2.0 = 0xC000, I32 -2 = 0xFFFFFFFE.
TEST(SafetensorsTest, DecodesHandWrittenLittleEndianData) {
  TempDir dir;
  const std::string header =
      "{\"h\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[0,4]},"
      "\"b\":{\"dtype\":\"BF16\",\"shape\":[1],\"data_offsets\":[4,6]},"
      "\"i\":{\"dtype\":\"I32\",\"shape\":[],\"data_offsets\":[6,10]},"
      "\"l\":{\"dtype\":\"I64\",\"shape\":[1,1],\"data_offsets\":[10,18]},"
      "\"t\":{\"dtype\":\"BOOL\",\"shape\":[2],\"data_offsets\":[18,20]}}";
  const std::string data = std::string("\x00\x3c\x00\x00", 4) + std::string("\x00\xc0", 2) +
                           std::string("\xfe\xff\xff\xff", 4) +
                           std::string("\x01\x02\x00\x00\x00\x00\x00\x80", 8) +
                           std::string("\x01\x00", 2);
  const std::string path = (dir / "hand.safetensors").string();
  write_file(path, raw_file(header, data));
  const SafetensorsFile f = read_safetensors(path);
  EXPECT_EQ(f.names, (std::vector<std::string>{"h", "b", "i", "l", "t"}));
  EXPECT_TRUE(torch::equal(f.tensors.at("h"), torch::tensor({1.0, 0.0}).to(torch::kHalf)));
  EXPECT_EQ(f.tensors.at("b").item<float>(), -2.0f);
  EXPECT_EQ(f.tensors.at("i").dim(), 0);
  EXPECT_EQ(f.tensors.at("i").item<int32_t>(), -2);
  EXPECT_EQ(f.tensors.at("l").item<int64_t>(),
            std::numeric_limits<int64_t>::min() + 0x0201);
  EXPECT_TRUE(torch::equal(f.tensors.at("t"), torch::tensor({true, false})));
  EXPECT_TRUE(f.metadata.empty());
}

TEST(SafetensorsTest, NamesFollowDataOffsetsNotHeaderOrder) {
  TempDir dir;
  const std::string header =
      "{\"second\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]},"
      "\"__metadata__\":{\"k\":\"v\"},"
      "\"first\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}";
  const std::string path = (dir / "order.safetensors").string();
  write_file(path, raw_file(header, "\x05\x06", 3));
  const SafetensorsFile f = read_safetensors(path);
  EXPECT_EQ(f.names, (std::vector<std::string>{"first", "second"}));
  EXPECT_EQ(f.tensors.at("first").item<uint8_t>(), 5);
  EXPECT_EQ(f.tensors.at("second").item<uint8_t>(), 6);
  EXPECT_EQ(f.metadata.at("k"), "v");
}

// A header of 640 bytes starts the file with 0x80 0x02, the start of a pickle stream.
TEST(SafetensorsTest, HeaderLengthThatLooksLikePickleMagicIsRead) {
  TempDir dir;
  const std::string header = "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}";
  const std::string path = (dir / "len640.safetensors").string();
  write_file(path, raw_file(header, "\x2a", 640 - header.size()));
  ASSERT_EQ(read_file(path).substr(0, 2), std::string("\x80\x02", 2));
  EXPECT_EQ(read_safetensors(path).tensors.at("a").item<uint8_t>(), 42);
}

TEST(SafetensorsTest, HeaderOnlyReadGivesDtypesShapesAndOffsets) {
  TempDir dir;
  const std::string path = (dir / "h.safetensors").string();
  write_safetensors(path,
                    {{"a", torch::zeros({2, 3}, torch::kHalf)},
                     {"s", torch::tensor(1.0, torch::kDouble)},
                     {"e", torch::zeros({0}, torch::kBool)},
                     {"b", torch::zeros({5}, torch::kByte)}},
                    {{"k", "v"}});
  const SafetensorsHeader h = read_safetensors_header(path);
  EXPECT_EQ(h.names, (std::vector<std::string>{"a", "s", "e", "b"}));
  const auto& a = h.tensors.at("a");
  EXPECT_EQ(a.dtype, "F16");
  EXPECT_EQ(a.scalar_type, torch::kHalf);
  EXPECT_EQ(a.shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(a.begin, 0u);
  EXPECT_EQ(a.end, 12u);  // 6 x 2 bytes
  EXPECT_EQ(h.tensors.at("s").dtype, "F64");
  EXPECT_TRUE(h.tensors.at("s").shape.empty());
  EXPECT_EQ(h.tensors.at("s").begin, 12u);
  EXPECT_EQ(h.tensors.at("s").end, 20u);
  EXPECT_EQ(h.tensors.at("e").begin, 20u);
  EXPECT_EQ(h.tensors.at("e").end, 20u);
  EXPECT_EQ(h.tensors.at("b").dtype, "U8");
  EXPECT_EQ(h.tensors.at("b").end, 25u);
  EXPECT_EQ(h.metadata.at("k"), "v");
  EXPECT_EQ(h.data_start % 8, 0u);  // padded header
  EXPECT_EQ(std::filesystem::file_size(path), h.data_start + 25);
  // The header text itself has no trailing bytes other than spaces.
  const std::string bytes = read_file(path);
  const std::string text = bytes.substr(8, h.data_start - 8);
  EXPECT_EQ(nlohmann::json::parse(text).size(), 5u);
  EXPECT_EQ(text.find_last_not_of(' '), text.rfind('}'));
}

TEST(SafetensorsTest, WriteReplacesAtomicallyAndLeavesNoTemporary) {
  TempDir dir;
  const std::string path = (dir / "w.safetensors").string();
  write_safetensors(path, {{"x", torch::ones({1000})}});
  write_safetensors(path, {{"y", torch::zeros({2})}});
  const SafetensorsFile f = read_safetensors(path);
  EXPECT_EQ(f.names, std::vector<std::string>{"y"});
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
  EXPECT_EQ(read_file(path).find("__metadata__"), std::string::npos);

  const std::string missing_dir = (dir / "no" / "such" / "w.safetensors").string();
  try {
    write_safetensors(missing_dir, {{"x", torch::ones({1})}});
    ADD_FAILURE() << "expected IoError";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find(missing_dir), std::string::npos) << e.what();
  }
  EXPECT_FALSE(std::filesystem::exists(missing_dir));
}

TEST(SafetensorsTest, WriterRejectsWhatTheFormatCannotHold) {
  TempDir dir;
  const std::string path = (dir / "bad.safetensors").string();
  auto error_of = [&](const std::vector<std::pair<std::string, torch::Tensor>>& t) -> std::string {
    try {
      write_safetensors(path, t);
    } catch (const std::invalid_argument& e) {
      return e.what();
    }
    return "";
  };
  std::string e = error_of({{"a", torch::ones({1})}, {"a", torch::ones({2})}});
  EXPECT_NE(e.find("tensor 'a': duplicate name"), std::string::npos) << e;
  EXPECT_NE(e.find(path), std::string::npos) << e;
  e = error_of({{"__metadata__", torch::ones({1})}});
  EXPECT_NE(e.find("reserved"), std::string::npos) << e;
  e = error_of({{"c", torch::ones({2}, torch::kComplexFloat)}});
  EXPECT_NE(e.find("tensor 'c'"), std::string::npos) << e;
  e = error_of({{"u", torch::Tensor()}});
  EXPECT_NE(e.find("tensor 'u': undefined"), std::string::npos) << e;
  e = error_of({{"sp", torch::eye(3).to_sparse()}});
  EXPECT_NE(e.find("tensor 'sp'"), std::string::npos) << e;
  e = error_of({{"bad\xff", torch::ones({1})}});
  EXPECT_NE(e.find("not valid UTF-8"), std::string::npos) << e;
  EXPECT_FALSE(std::filesystem::exists(path));
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
}

TEST(SafetensorsTest, MalformedFilesNameTheFileAndTensor) {
  TempDir dir;
  const std::string ok_entry = "{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}";
  const std::string eight(8, '\0');
  struct Case {
    std::string name;
    std::string bytes;
    std::vector<std::string> expect;  // substrings of the message
  };
  const std::vector<Case> cases = {
      {"short", "\x01\x02\x03", {"3 bytes, shorter than the 8-byte header length"}},
      {"length_beyond_file", u64_le(1000) + "{}", {"header length 1000 exceeds the 2 bytes"}},
      {"invalid_json", raw_file("{\"w\": {", ""), {"invalid JSON header"}},
      {"not_object", raw_file("[1, 2]", ""), {"expected a JSON object, got array"}},
      {"entry_not_object", raw_file("{\"w\": 3}", ""), {"tensor 'w': header entry must be an object"}},
      {"missing_dtype",
       raw_file("{\"w\":{\"shape\":[2],\"data_offsets\":[0,8]}}", eight),
       {"tensor 'w': missing 'dtype'"}},
      {"missing_shape",
       raw_file("{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}}", eight),
       {"tensor 'w': missing 'shape'"}},
      {"missing_offsets",
       raw_file("{\"w\":{\"dtype\":\"F32\",\"shape\":[2]}}", eight),
       {"tensor 'w': missing 'data_offsets'"}},
      {"unknown_dtype",
       raw_file("{\"w\":{\"dtype\":\"F31\",\"shape\":[2],\"data_offsets\":[0,8]}}", eight),
       {"tensor 'w': unknown dtype 'F31'", "F32"}},
      {"unsupported_dtype",
       raw_file("{\"w\":{\"dtype\":\"U16\",\"shape\":[4],\"data_offsets\":[0,8]}}", eight),
       {"tensor 'w': dtype U16 is valid safetensors but has no LibTorch"}},
      {"negative_dim",
       raw_file("{\"w\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", eight),
       {"tensor 'w': 'shape' entries must be non-negative integers"}},
      {"offsets_not_pair",
       raw_file("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}}", eight),
       {"tensor 'w': 'data_offsets' must be [begin, end]"}},
      {"offsets_out_of_range",
       raw_file("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", eight),
       {"tensor 'w': data_offsets [4, 12] go beyond the data section (8 bytes)"}},
      {"offsets_reversed",
       raw_file("{\"w\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,4]}}", eight),
       {"tensor 'w': data_offsets [8, 4] end before they begin"}},
      {"size_mismatch",
       raw_file("{\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", eight),
       {"tensor 'w': data_offsets [0, 8] span 8 bytes, but F32 [3] needs 3 x 4 = 12"}},
      {"overlap",
       raw_file("{\"a\":" + ok_entry +
                    ",\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
                eight),
       {"tensor 'b': data_offsets [4, 8] overlap tensor 'a'"}},
      {"gap",
       raw_file("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", eight),
       {"tensor 'a': data_offsets [4, 8] leave a gap after the start of the data section"}},
      {"trailing_bytes", raw_file("{\"w\":" + ok_entry + "}", eight + "xx"),
       {"2 trailing bytes belong to no tensor"}},
      {"duplicate_name",
       raw_file("{\"w\":" + ok_entry + ",\"w\":" + ok_entry + "}", eight),
       {"duplicate tensor name 'w'"}},
      {"duplicate_field",
       raw_file("{\"w\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
                eight),
       {"tensor 'w': duplicate field 'dtype'"}},
      {"metadata_not_string",
       raw_file("{\"__metadata__\":{\"epoch\":3}}", ""),
       {"'__metadata__' value of 'epoch' must be a string"}},
      {"bool_byte",
       raw_file("{\"m\":{\"dtype\":\"BOOL\",\"shape\":[2],\"data_offsets\":[0,2]}}",
                std::string("\x01\x07", 2)),
       {"tensor 'm': BOOL data holds a byte other than 0 or 1"}},
  };
  for (const auto& c : cases) {
    const std::string path = (dir / (c.name + ".safetensors")).string();
    write_file(path, c.bytes);
    const std::string message = read_error(path);
    ASSERT_FALSE(message.empty()) << c.name << ": no IoError";
    EXPECT_EQ(message.rfind(path + ": ", 0), 0u) << c.name << ": " << message;
    for (const auto& want : c.expect)
      EXPECT_NE(message.find(want), std::string::npos) << c.name << ": " << message;
  }
  const std::string missing = (dir / "missing.safetensors").string();
  EXPECT_NE(read_error(missing).find("no such file"), std::string::npos);
}

TEST(SafetensorsTest, PickleFilesGetAConversionHint) {
  TempDir dir;
  // torch.save (>= 1.6) writes a zip archive; the legacy format is a protocol-2 pickle.
  const std::vector<std::pair<std::string, std::string>> files = {
      {"open_clip_pytorch_model.bin", std::string("PK\x03\x04\x00\x00\x08\x08\x00\x00rest", 14)},
      {"legacy.pt", std::string("\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19", 14)},
  };
  for (const auto& [name, bytes] : files) {
    const std::string path = (dir / name).string();
    write_file(path, bytes);
    const std::string message = read_error(path);
    EXPECT_NE(message.find("this is a PyTorch pickle"), std::string::npos) << message;
    EXPECT_NE(message.find("not safetensors"), std::string::npos) << message;
    EXPECT_NE(message.find("from safetensors.torch import save_file"), std::string::npos);
    EXPECT_NE(message.find("torch.load(\"" + path + "\", map_location=\"cpu\")"),
              std::string::npos)
        << message;
    const std::string out =
        std::filesystem::path(path).replace_extension(".safetensors").string();
    EXPECT_NE(message.find("\"" + out + "\")'"), std::string::npos) << message;
  }
}

/// Rows of coca_tiny_s0.keys.txt: key -> shape.
std::map<std::string, std::vector<int64_t>> reference_keys(const std::filesystem::path& file) {
  std::map<std::string, std::vector<int64_t>> keys;
  std::ifstream in(file);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream row(line);
    std::string key, shape;
    std::getline(row, key, '\t');
    std::getline(row, shape, '\t');
    keys[key] = nlohmann::json::parse(shape).get<std::vector<int64_t>>();
  }
  return keys;
}

TEST(SafetensorsTest, ReadsOpenClipReferenceWeights) {
  COCA_REQUIRE_REFERENCE();
  const auto dir = reference_dir() / "open_clip_tiny";
  const auto keys = reference_keys(dir / "coca_tiny_s0.keys.txt");
  const auto manifest = nlohmann::json::parse(read_file(dir / "coca_tiny_s0.manifest.json"));
  ASSERT_EQ(keys.size(), manifest["n_state_dict_tensors"].get<size_t>());

  const SafetensorsFile f = read_safetensors((dir / "coca_tiny_s0.weights.safetensors").string());
  ASSERT_EQ(f.tensors.size(), keys.size());
  int64_t params = 0;
  for (const auto& [key, shape] : keys) {
    ASSERT_TRUE(f.tensors.count(key)) << key;
    const torch::Tensor& t = f.tensors.at(key);
    EXPECT_EQ(t.sizes().vec(), shape) << key;
    EXPECT_EQ(t.scalar_type(), torch::kFloat) << key;
    EXPECT_TRUE(torch::isfinite(t).all().item<bool>()) << key;
    params += t.numel();
  }
  EXPECT_EQ(params, manifest["n_params"].get<int64_t>());
  EXPECT_EQ(f.tensors.at("logit_scale").dim(), 0);
  // open_clip initialises logit_scale to ln(1/0.07).
  EXPECT_NEAR(f.tensors.at("logit_scale").item<float>(), std::log(1.0 / 0.07), 1e-6);
  EXPECT_EQ(nlohmann::json::parse(f.metadata.at("config")), manifest["config"]);
}

TEST(SafetensorsTest, ReadsOpenClipReferenceIo) {
  COCA_REQUIRE_REFERENCE();
  const auto dir = reference_dir() / "open_clip_tiny";
  const auto keys = reference_keys(dir / "coca_tiny_s0.keys.txt");
  const auto manifest = nlohmann::json::parse(read_file(dir / "coca_tiny_s0.manifest.json"));
  const SafetensorsFile f = read_safetensors((dir / "coca_tiny_s0.io.safetensors").string());
  const std::map<std::string, torch::ScalarType> dtypes = {{"float32", torch::kFloat},
                                                           {"int64", torch::kLong}};
  for (const auto& [name, info] : manifest["io"].items()) {
    ASSERT_TRUE(f.tensors.count(name)) << name;
    EXPECT_EQ(f.tensors.at(name).sizes().vec(), info["shape"].get<std::vector<int64_t>>()) << name;
    EXPECT_EQ(f.tensors.at(name).scalar_type(), dtypes.at(info["dtype"].get<std::string>()))
        << name;
  }
  size_t grads = 0;
  for (const auto& name : f.names) {
    for (const std::string prefix : {"grad.", "step1."}) {
      if (name.rfind(prefix, 0) != 0) continue;
      const std::string key = name.substr(prefix.size());
      ASSERT_TRUE(keys.count(key)) << name;
      EXPECT_EQ(f.tensors.at(name).sizes().vec(), keys.at(key)) << name;
      grads += prefix == "grad.";
    }
  }
  EXPECT_EQ(grads, keys.size());
  // The labels are the input text shifted by one (manifest io_doc).
  EXPECT_TRUE(torch::equal(f.tensors.at("fwd.labels"),
                           f.tensors.at("input.text").slice(1, 1)));
}

// Writing the tensors back in the file's order must reproduce its data section and
// offsets byte for byte (the header differs only in where "__metadata__" sits).
TEST(SafetensorsTest, RewritingTheReferenceReproducesItsData) {
  COCA_REQUIRE_REFERENCE();
  TempDir tmp;
  const std::string src =
      (reference_dir() / "open_clip_tiny" / "coca_tiny_s0.weights.safetensors").string();
  const SafetensorsFile f = read_safetensors(src);
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  for (const auto& name : f.names) tensors.emplace_back(name, f.tensors.at(name));
  const std::string out = (tmp / "copy.safetensors").string();
  write_safetensors(out, tensors, f.metadata);

  const SafetensorsHeader a = read_safetensors_header(src);
  const SafetensorsHeader b = read_safetensors_header(out);
  EXPECT_EQ(a.names, b.names);
  for (const auto& name : a.names) {
    EXPECT_EQ(a.tensors.at(name).begin, b.tensors.at(name).begin) << name;
    EXPECT_EQ(a.tensors.at(name).end, b.tensors.at(name).end) << name;
  }
  EXPECT_EQ(a.metadata, b.metadata);
  const std::string x = read_file(src), y = read_file(out);
  EXPECT_TRUE(x.compare(a.data_start, std::string::npos, y, b.data_start, std::string::npos) == 0);
}

}  // namespace
}  // namespace coca::io
