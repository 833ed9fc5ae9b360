// libcoca_spm.so: SentencePiece behind the C interface of src/data/detail/spm_shim_api.h.
// It is the only binary that links libsentencepiece (see that header for why).
#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <algorithm>
#include <cstring>
#include <exception>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "data/detail/spm_shim_api.h"

struct coca_spm_model {
  sentencepiece::SentencePieceProcessor processor;
};

namespace {

void set_error(char* err, size_t cap, const std::string& what) {
  if (err == nullptr || cap == 0) return;
  const size_t n = std::min(cap - 1, what.size());
  std::memcpy(err, what.data(), n);
  err[n] = '\0';
}

int64_t copy_out(const std::string& s, char* out, int64_t cap) {
  const auto n = static_cast<int64_t>(s.size());
  if (out != nullptr && n <= cap) std::memcpy(out, s.data(), s.size());
  return n;
}

}  // namespace

extern "C" {

__attribute__((visibility("default"))) int coca_spm_abi_version(void) {
  return COCA_SPM_SHIM_ABI;
}

__attribute__((visibility("default"))) coca_spm_model* coca_spm_load(const char* path,
                                                                     char* err,
                                                                     size_t err_cap) {
  try {
    auto model = std::make_unique<coca_spm_model>();
    const auto status = model->processor.Load(path);
    if (!status.ok()) {
      set_error(err, err_cap, status.ToString());
      return nullptr;
    }
    return model.release();
  } catch (const std::exception& e) {
    set_error(err, err_cap, e.what());
    return nullptr;
  }
}

__attribute__((visibility("default"))) void coca_spm_free(coca_spm_model* model) {
  delete model;
}

__attribute__((visibility("default"))) int coca_spm_vocab_size(const coca_spm_model* model) {
  return model->processor.GetPieceSize();
}
__attribute__((visibility("default"))) int coca_spm_bos_id(const coca_spm_model* model) {
  return model->processor.bos_id();
}
__attribute__((visibility("default"))) int coca_spm_eos_id(const coca_spm_model* model) {
  return model->processor.eos_id();
}
__attribute__((visibility("default"))) int coca_spm_pad_id(const coca_spm_model* model) {
  return model->processor.pad_id();
}
__attribute__((visibility("default"))) int coca_spm_unk_id(const coca_spm_model* model) {
  return model->processor.unk_id();
}

__attribute__((visibility("default"))) int64_t coca_spm_encode(const coca_spm_model* model,
                                                               const char* text, size_t len,
                                                               int* ids, int64_t cap) {
  try {
    std::vector<int> out;
    if (!model->processor.Encode(std::string(text, len), &out).ok()) return -1;
    const auto n = static_cast<int64_t>(out.size());
    if (ids != nullptr && n <= cap) std::copy(out.begin(), out.end(), ids);
    return n;
  } catch (const std::exception&) {
    return -1;
  }
}

__attribute__((visibility("default"))) int64_t coca_spm_decode(const coca_spm_model* model,
                                                               const int* ids, int64_t n,
                                                               char* out, int64_t cap) {
  try {
    const int size = model->processor.GetPieceSize();
    for (int64_t i = 0; i < n; ++i) {
      if (ids[i] < 0 || ids[i] >= size) return -1;
    }
    std::string text;
    if (!model->processor.Decode(std::vector<int>(ids, ids + n), &text).ok()) return -1;
    return copy_out(text, out, cap);
  } catch (const std::exception&) {
    return -1;
  }
}

__attribute__((visibility("default"))) int64_t coca_spm_id_to_piece(const coca_spm_model* model,
                                                                    int id, char* out,
                                                                    int64_t cap) {
  if (id < 0 || id >= model->processor.GetPieceSize()) return -1;
  return copy_out(model->processor.IdToPiece(id), out, cap);
}

__attribute__((visibility("default"))) int coca_spm_piece_to_id(const coca_spm_model* model,
                                                                const char* piece) {
  return model->processor.PieceToId(piece);
}

__attribute__((visibility("default"))) int coca_spm_is_control(const coca_spm_model* model,
                                                              int id) {
  if (id < 0 || id >= model->processor.GetPieceSize()) return 0;
  return model->processor.IsControl(id) ? 1 : 0;
}

__attribute__((visibility("default"))) int coca_spm_train(const char* const* keys,
                                                         const char* const* values, int n,
                                                         char* err, size_t err_cap) {
  try {
    std::unordered_map<std::string, std::string> kwargs;
    for (int i = 0; i < n; ++i) kwargs[keys[i]] = values[i];
    const auto status = sentencepiece::SentencePieceTrainer::Train(kwargs);
    if (!status.ok()) {
      set_error(err, err_cap, status.ToString());
      return -1;
    }
    return 0;
  } catch (const std::exception& e) {
    set_error(err, err_cap, e.what());
    return -1;
  }
}

}  // extern "C"
