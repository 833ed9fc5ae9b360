#include "coca/io/safetensors.h"

#include <fcntl.h>
#include <unistd.h>

#include <torch/torch.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <stdexcept>

#include "coca/common/error.h"

// safetensors stores little-endian data and we copy bytes verbatim.
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "coca::io safetensors support assumes a little-endian host"
#endif

namespace coca::io {
namespace {

using Json = nlohmann::ordered_json;  // keeps header order: it breaks ties between empty tensors

constexpr const char* kMetadataKey = "__metadata__";
// The reference reader rejects larger headers (safetensors MAX_HEADER_SIZE).
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

struct DtypeEntry {
  const char* name;
  torch::ScalarType type;
};
constexpr DtypeEntry kDtypes[] = {
    {"F64", torch::kDouble}, {"F32", torch::kFloat}, {"F16", torch::kHalf},
    {"BF16", torch::kBFloat16}, {"I64", torch::kLong}, {"I32", torch::kInt},
    {"I16", torch::kShort},  {"I8", torch::kChar},   {"U8", torch::kByte},
    {"BOOL", torch::kBool},
};
// Valid safetensors dtypes that LibTorch 1.13 has no type for.
constexpr const char* kValidButUnsupported[] = {"U16", "U32", "U64", "F8_E5M2", "F8_E4M3"};

const DtypeEntry* find_dtype(const std::string& name) {
  for (const auto& d : kDtypes)
    if (name == d.name) return &d;
  return nullptr;
}

std::string known_dtypes() {
  std::string out;
  for (const auto& d : kDtypes) out += (out.empty() ? "" : ", ") + std::string(d.name);
  return out;
}

std::string tensor_msg(const std::string& name, const std::string& what) {
  return "tensor '" + name + "': " + what;
}

std::string shape_str(const std::vector<int64_t>& shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i) out += (i ? ", " : "") + std::to_string(shape[i]);
  return out + "]";
}

std::string offsets_str(uint64_t begin, uint64_t end) {
  return "[" + std::to_string(begin) + ", " + std::to_string(end) + "]";
}

uint64_t read_u64_le(const unsigned char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

/// A pickle written by torch.save: the zip container (>= 1.6) or the legacy pickle stream.
/// Only called when the bytes cannot be a safetensors header.
std::string pickle_kind(const unsigned char* head, size_t n) {
  if (n >= 4 && head[0] == 'P' && head[1] == 'K' && head[2] == 3 && head[3] == 4)
    return "torch.save zip archive";
  if (n >= 2 && head[0] == 0x80 && head[1] >= 2 && head[1] <= 5) return "pickle stream";
  return "";
}

std::string pickle_hint(const std::string& path, const std::string& kind) {
  std::filesystem::path out(path);
  out.replace_extension(".safetensors");
  return "this is a PyTorch pickle (" + kind +
         "), not safetensors; convert it with: python -c 'import torch; from "
         "safetensors.torch import save_file; sd = torch.load(\"" +
         path +
         "\", map_location=\"cpu\"); sd = sd.get(\"state_dict\", sd); "
         "save_file({k.removeprefix(\"module.\"): v.contiguous().clone() for k, v in "
         "sd.items()}, \"" +
         out.string() + "\")'";
}

/// Opens `path` and returns its size; IoError when it does not exist or cannot be read.
std::ifstream open_for_reading(const std::string& path, uint64_t& size) {
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  if (ec || !std::filesystem::exists(status)) throw IoError(path, "no such file");
  if (std::filesystem::is_directory(status))
    throw IoError(path, "is a directory, expected a .safetensors file");
  size = std::filesystem::file_size(path, ec);
  if (ec) throw IoError(path, "cannot read its size: " + ec.message());
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError(path, std::string("cannot open for reading: ") + std::strerror(errno));
  return in;
}

/// Parses the JSON header, rejecting duplicate keys (nlohmann would keep one silently).
Json parse_json(const std::string& path, const std::string& text) {
  std::vector<std::set<std::string>> keys;  // one set per open object
  std::string top_key;                      // current top-level key
  std::vector<std::string> duplicates;
  Json::parser_callback_t cb = [&](int, Json::parse_event_t event, Json& parsed) {
    switch (event) {
      case Json::parse_event_t::object_start:
        keys.emplace_back();
        break;
      case Json::parse_event_t::object_end:
        if (!keys.empty()) keys.pop_back();
        break;
      case Json::parse_event_t::key: {
        const std::string key = parsed.get<std::string>();
        if (keys.size() == 1) top_key = key;
        if (!keys.empty() && !keys.back().insert(key).second) {
          duplicates.push_back(keys.size() == 1
                                   ? "duplicate tensor name '" + key + "'"
                                   : tensor_msg(top_key, "duplicate field '" + key + "'"));
        }
        break;
      }
      default:
        break;
    }
    return true;
  };
  Json header;
  try {
    header = Json::parse(text, cb);
  } catch (const nlohmann::json::exception& e) {
    throw IoError(path, std::string("invalid JSON header: ") + e.what());
  }
  if (!duplicates.empty()) throw IoError(path, "invalid header: " + duplicates.front());
  return header;
}

/// A non-negative JSON integer (shape entries, offsets).
bool as_u64(const Json& v, uint64_t& out) {
  if (!v.is_number_unsigned()) return false;
  out = v.get<uint64_t>();
  return true;
}

SafetensorsTensorInfo parse_entry(const std::string& path, const std::string& name, const Json& v,
                                  uint64_t data_size) {
  auto fail = [&](const std::string& what) { throw IoError(path, tensor_msg(name, what)); };
  if (!v.is_object()) fail("header entry must be an object, got " + v.dump());
  SafetensorsTensorInfo info;

  const auto dtype = v.find("dtype");
  if (dtype == v.end()) fail("missing 'dtype'");
  if (!dtype->is_string()) fail("'dtype' must be a string, got " + dtype->dump());
  info.dtype = dtype->get<std::string>();
  const DtypeEntry* entry = find_dtype(info.dtype);
  if (entry == nullptr) {
    for (const char* d : kValidButUnsupported)
      if (info.dtype == d)
        fail("dtype " + info.dtype + " is valid safetensors but has no LibTorch " +
             TORCH_VERSION + " type (supported: " + known_dtypes() + ")");
    fail("unknown dtype '" + info.dtype + "' (expected one of " + known_dtypes() + ")");
  }
  info.scalar_type = entry->type;

  const auto shape = v.find("shape");
  if (shape == v.end()) fail("missing 'shape'");
  if (!shape->is_array()) fail("'shape' must be an array, got " + shape->dump());
  uint64_t numel = 1;
  bool overflow = false;
  for (const auto& d : *shape) {
    uint64_t dim = 0;
    if (!as_u64(d, dim) || dim > uint64_t(std::numeric_limits<int64_t>::max()))
      fail("'shape' entries must be non-negative integers, got " + shape->dump());
    info.shape.push_back(int64_t(dim));
    if (dim != 0 && numel > std::numeric_limits<uint64_t>::max() / dim) overflow = true;
    numel *= dim;
  }
  const uint64_t itemsize = c10::elementSize(info.scalar_type);
  if (numel == 0) overflow = false;  // an empty dimension makes every other size irrelevant
  if (overflow || numel > std::numeric_limits<uint64_t>::max() / itemsize)
    fail("shape " + shape->dump() + " overflows a 64-bit byte count");

  const auto offsets = v.find("data_offsets");
  if (offsets == v.end()) fail("missing 'data_offsets'");
  if (!offsets->is_array() || offsets->size() != 2 || !as_u64((*offsets)[0], info.begin) ||
      !as_u64((*offsets)[1], info.end))
    fail("'data_offsets' must be [begin, end] with non-negative integers, got " +
         offsets->dump());
  if (info.end < info.begin)
    fail("data_offsets " + offsets_str(info.begin, info.end) + " end before they begin");
  if (info.end > data_size)
    fail("data_offsets " + offsets_str(info.begin, info.end) + " go beyond the data section (" +
         std::to_string(data_size) + " bytes)");
  const uint64_t nbytes = numel * itemsize;
  if (info.end - info.begin != nbytes)
    fail("data_offsets " + offsets_str(info.begin, info.end) + " span " +
         std::to_string(info.end - info.begin) + " bytes, but " + info.dtype + " " +
         shape_str(info.shape) + " needs " + std::to_string(numel) + " x " +
         std::to_string(itemsize) + " = " + std::to_string(nbytes));
  return info;
}

SafetensorsHeader read_header(const std::string& path, std::ifstream& in, uint64_t file_size) {
  unsigned char head[9] = {0};
  const size_t head_n = size_t(std::min<uint64_t>(file_size, 9));
  in.read(reinterpret_cast<char*>(head), std::streamsize(head_n));
  if (size_t(in.gcount()) != head_n) throw IoError(path, "short read of the header length");
  const uint64_t n = file_size >= 8 ? read_u64_le(head) : 0;
  const bool plausible = file_size >= 9 && head[8] == '{' && n <= file_size - 8;
  if (!plausible) {
    const std::string kind = pickle_kind(head, head_n);
    if (!kind.empty()) throw IoError(path, pickle_hint(path, kind));
  }
  if (file_size < 8)
    throw IoError(path, "file is " + std::to_string(file_size) +
                            " bytes, shorter than the 8-byte header length of a safetensors file");
  if (n > file_size - 8)
    throw IoError(path, "header length " + std::to_string(n) + " exceeds the " +
                            std::to_string(file_size - 8) +
                            " bytes after the length field (truncated file, or not safetensors)");
  if (n > kMaxHeaderBytes)
    throw IoError(path, "header length " + std::to_string(n) + " exceeds the format's limit of " +
                            std::to_string(kMaxHeaderBytes) + " bytes");

  std::string text(size_t(n), '\0');
  in.seekg(8);
  in.read(text.data(), std::streamsize(n));
  if (uint64_t(in.gcount()) != n) throw IoError(path, "short read of the JSON header");
  const Json json = parse_json(path, text);
  if (!json.is_object())
    throw IoError(path, "invalid header: expected a JSON object, got " + std::string(json.type_name()));

  SafetensorsHeader header;
  header.data_start = 8 + n;
  const uint64_t data_size = file_size - header.data_start;
  std::vector<std::string> order;  // header order
  for (auto it = json.begin(); it != json.end(); ++it) {
    if (it.key() == kMetadataKey) {
      if (!it.value().is_object())
        throw IoError(path, "invalid header: '__metadata__' must be an object of strings, got " +
                                it.value().dump());
      for (auto m = it.value().begin(); m != it.value().end(); ++m) {
        if (!m.value().is_string())
          throw IoError(path, "invalid header: '__metadata__' value of '" + m.key() +
                                  "' must be a string, got " + m.value().dump());
        header.metadata[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    header.tensors[it.key()] = parse_entry(path, it.key(), it.value(), data_size);
    order.push_back(it.key());
  }

  // The tensors, in offset order, must tile the data section: no overlap, no gap.
  std::stable_sort(order.begin(), order.end(), [&](const std::string& a, const std::string& b) {
    const auto& x = header.tensors.at(a);
    const auto& y = header.tensors.at(b);
    return std::make_pair(x.begin, x.end) < std::make_pair(y.begin, y.end);
  });
  uint64_t pos = 0;
  std::string prev;
  for (const auto& name : order) {
    const auto& t = header.tensors.at(name);
    if (t.begin != pos) {
      const std::string where = prev.empty() ? "the start of the data section"
                                             : "tensor '" + prev + "' (which ends at " +
                                                   std::to_string(pos) + ")";
      throw IoError(path, tensor_msg(name, "data_offsets " + offsets_str(t.begin, t.end) +
                                               (t.begin < pos ? " overlap " : " leave a gap after ") +
                                               where));
    }
    pos = t.end;
    prev = name;
  }
  if (pos != data_size)
    throw IoError(path, "the tensors cover " + std::to_string(pos) + " of the " +
                            std::to_string(data_size) + " data bytes; " +
                            std::to_string(data_size - pos) +
                            " trailing bytes belong to no tensor");
  header.names = std::move(order);
  return header;
}

[[noreturn]] void throw_errno(const std::string& path, const std::string& what) {
  throw IoError(path, what + ": " + std::strerror(errno));
}

void write_all(int fd, const char* data, size_t n, const std::string& tmp) {
  while (n > 0) {
    const ssize_t w = ::write(fd, data, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      throw_errno(tmp, "write failed");
    }
    data += w;
    n -= size_t(w);
  }
}

}  // namespace

std::string safetensors_dtype_name(torch::ScalarType type) {
  for (const auto& d : kDtypes)
    if (d.type == type) return d.name;
  throw std::invalid_argument(std::string("safetensors has no dtype for LibTorch type ") +
                              c10::toString(type));
}

SafetensorsHeader read_safetensors_header(const std::string& path) {
  uint64_t size = 0;
  std::ifstream in = open_for_reading(path, size);
  return read_header(path, in, size);
}

SafetensorsFile read_safetensors(const std::string& path) {
  uint64_t size = 0;
  std::ifstream in = open_for_reading(path, size);
  SafetensorsHeader header = read_header(path, in, size);
  SafetensorsFile file;
  file.metadata = std::move(header.metadata);
  for (const auto& name : header.names) {
    const auto& info = header.tensors.at(name);
    torch::Tensor t = torch::empty(info.shape, torch::TensorOptions().dtype(info.scalar_type));
    const uint64_t nbytes = info.end - info.begin;
    if (nbytes > 0) {
      in.seekg(std::streamoff(header.data_start + info.begin));
      in.read(static_cast<char*>(t.data_ptr()), std::streamsize(nbytes));
      if (uint64_t(in.gcount()) != nbytes)
        throw IoError(path, tensor_msg(name, "short read of its data"));
      if (info.scalar_type == torch::kBool) {
        // LibTorch assumes bool bytes are 0 or 1; anything else is undefined behaviour.
        const auto* p = static_cast<const uint8_t*>(t.data_ptr());
        if (std::any_of(p, p + nbytes, [](uint8_t b) { return b > 1; }))
          throw IoError(path, tensor_msg(name, "BOOL data holds a byte other than 0 or 1"));
      }
    }
    file.tensors.emplace(name, std::move(t));
  }
  file.names = std::move(header.names);
  return file;
}

void write_safetensors(const std::string& path,
                       const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  auto bad = [&](const std::string& name, const std::string& what) {
    throw std::invalid_argument(path + ": " + tensor_msg(name, what));
  };
  Json header = Json::object();
  if (!metadata.empty()) {
    Json meta = Json::object();
    for (const auto& [k, v] : metadata) meta[k] = v;
    header[kMetadataKey] = std::move(meta);
  }
  std::vector<torch::Tensor> data;
  data.reserve(tensors.size());
  std::set<std::string> seen;
  uint64_t offset = 0;
  for (const auto& [name, tensor] : tensors) {
    if (name == kMetadataKey) bad(name, "this name is reserved for the metadata");
    if (!seen.insert(name).second) bad(name, "duplicate name");
    if (!tensor.defined()) bad(name, "undefined tensor");
    if (tensor.layout() != torch::kStrided) bad(name, "only dense (strided) tensors can be saved");
    if (tensor.is_quantized()) bad(name, "quantized tensors cannot be saved");
    std::string dtype;
    try {
      dtype = safetensors_dtype_name(tensor.scalar_type());
    } catch (const std::invalid_argument& e) {
      bad(name, e.what());
    }
    torch::Tensor t = tensor.detach().to(torch::kCPU).contiguous();
    const uint64_t nbytes = uint64_t(t.numel()) * t.element_size();
    header[name] = Json{{"dtype", dtype},
                        {"shape", t.sizes().vec()},
                        {"data_offsets", {offset, offset + nbytes}}};
    offset += nbytes;
    data.push_back(std::move(t));
  }
  std::string text;
  try {
    text = header.dump();
  } catch (const nlohmann::json::exception& e) {
    throw std::invalid_argument(path + ": a tensor name or metadata string is not valid UTF-8 (" +
                                e.what() + ")");
  }
  text.append((8 - text.size() % 8) % 8, ' ');  // the reference pads to 8-byte alignment
  unsigned char len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<unsigned char>(uint64_t(text.size()) >> (8 * i));

  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw_errno(path, "cannot create '" + tmp + "'");
  try {
    write_all(fd, reinterpret_cast<const char*>(len), 8, tmp);
    write_all(fd, text.data(), text.size(), tmp);
    for (const auto& t : data)
      if (t.numel() > 0)
        write_all(fd, static_cast<const char*>(t.data_ptr()), size_t(t.numel()) * t.element_size(),
                  tmp);
    if (::fsync(fd) != 0) throw_errno(tmp, "fsync failed");
  } catch (...) {
    ::close(fd);
    ::unlink(tmp.c_str());
    throw;
  }
  if (::close(fd) != 0) {
    ::unlink(tmp.c_str());
    throw_errno(tmp, "close failed");
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    throw IoError(path, "cannot rename '" + tmp + "' into place: " + std::strerror(err));
  }
}

}  // namespace coca::io
