// Reader and writer for the safetensors format (https://github.com/huggingface/safetensors),
// the weight format open_clip and the Hugging Face tools load without pickle.
//
// Layout: an 8-byte little-endian u64 N, then N bytes of UTF-8 JSON
//   {"__metadata__": {str: str}, "name": {"dtype": "F32", "shape": [..],
//    "data_offsets": [begin, end]}, ...}
// padded with spaces to a multiple of 8 bytes, then the raw little-endian, C-contiguous
// tensor data. Offsets are relative to the first data byte; the tensors, sorted by
// offset, must tile the data section exactly (no gap, no overlap, nothing after the
// last one), as the reference implementation requires.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace coca::io {

/// One tensor's entry in a safetensors header.
struct SafetensorsTensorInfo {
  std::string dtype;           ///< safetensors name: F32, F16, BF16, F64, I64, I32, I16, I8, U8, BOOL
  torch::ScalarType scalar_type = torch::kFloat;  ///< the matching LibTorch type
  std::vector<int64_t> shape;  ///< [] for a 0-d tensor
  uint64_t begin = 0;          ///< data_offsets[0], relative to the data section
  uint64_t end = 0;            ///< data_offsets[1]; end - begin = numel * itemsize
};

/// A parsed and validated header (no tensor data).
struct SafetensorsHeader {
  std::vector<std::string> names;  ///< tensor names in file order (ascending data offset)
  std::map<std::string, SafetensorsTensorInfo> tensors;  ///< by name
  std::map<std::string, std::string> metadata;           ///< "__metadata__" (may be empty)
  uint64_t data_start = 0;  ///< absolute file offset of the data section (8 + N)
};

/// A whole file in memory. The tensors are CPU tensors that own their memory.
struct SafetensorsFile {
  std::vector<std::string> names;  ///< tensor names in file order (ascending data offset)
  std::map<std::string, torch::Tensor> tensors;  ///< by name
  std::map<std::string, std::string> metadata;   ///< "__metadata__" (may be empty)
};

/// Reads and validates the header of `path` without reading tensor data.
/// Throws coca::IoError naming the file (and the tensor, where one is at fault) when the
/// file is missing, shorter than 8 bytes, has a header length beyond the file, invalid
/// JSON, a missing or ill-typed dtype/shape/data_offsets, an unknown dtype, offsets that
/// are out of range, overlap, leave gaps or disagree with numel * itemsize, or duplicate
/// names; a PyTorch pickle (`torch.save` zip or legacy pickle) gets a conversion hint.
SafetensorsHeader read_safetensors_header(const std::string& path);

/// Reads every tensor of `path` into freshly allocated CPU tensors (no mapping is kept).
/// Same errors as read_safetensors_header, plus a short read and BOOL bytes other than 0/1.
SafetensorsFile read_safetensors(const std::string& path);

/// Writes `tensors` (data in the given order, header entries in the same order after
/// "__metadata__") to `path + ".tmp"`, flushes it to disk and renames it over `path`, so
/// readers never see a partial file. Tensors may live on any device and be
/// non-contiguous; they are copied to contiguous CPU memory first. 0-d and empty tensors
/// are allowed. The header is padded with spaces to a multiple of 8 bytes, as the
/// reference writer does. The metadata entry is omitted when `metadata` is empty.
/// Byte-identical to the reference `save_file` when the tensors are given in its order
/// (dtype descending in its enum order I64, F64, F32, I32, BF16, F16, I16, I8, U8, BOOL,
/// then name) and `metadata` has at most one entry (the reference keeps it in a hash map).
/// Throws std::invalid_argument (naming the file and tensor) for a duplicate name, the
/// name "__metadata__", an undefined, sparse or quantized tensor, or a dtype safetensors
/// cannot hold; coca::IoError when the file cannot be written.
void write_safetensors(const std::string& path,
                       const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

/// The safetensors dtype name of a LibTorch type ("F32" for kFloat, ...); throws
/// std::invalid_argument for types safetensors cannot hold (complex, quantized).
std::string safetensors_dtype_name(torch::ScalarType type);

}  // namespace coca::io
