// The C interface of libcoca_spm.so, the only library that links SentencePiece. coca_core
// dlopens it (RTLD_LOCAL | RTLD_DEEPBIND) and resolves these symbols by name, so
// SentencePiece's bundled protobuf-lite never meets LibTorch's libprotobuf. Private to
// src/data.
//
// Conventions: functions that fill a buffer return the size they need (bytes, or ids);
// when it exceeds the capacity given, nothing useful was written and the caller retries
// with a larger buffer. Errors are returned as text in `err` (NUL-terminated, truncated to
// err_cap) with a null handle or a negative return value.
#pragma once

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Bumped whenever a signature below changes; coca_core refuses another version.
#define COCA_SPM_SHIM_ABI 1

typedef struct coca_spm_model coca_spm_model;

int coca_spm_abi_version(void);
coca_spm_model* coca_spm_load(const char* path, char* err, size_t err_cap);
void coca_spm_free(coca_spm_model* model);
int coca_spm_vocab_size(const coca_spm_model* model);
/// Special ids; -1 when the model does not define them.
int coca_spm_bos_id(const coca_spm_model* model);
int coca_spm_eos_id(const coca_spm_model* model);
int coca_spm_pad_id(const coca_spm_model* model);
int coca_spm_unk_id(const coca_spm_model* model);
/// Returns the number of ids of `text`, or -1 on error.
int64_t coca_spm_encode(const coca_spm_model* model, const char* text, size_t len, int* ids,
                        int64_t cap);
/// Returns the length of the decoded text (without NUL), or -1 on error (id out of range).
int64_t coca_spm_decode(const coca_spm_model* model, const int* ids, int64_t n, char* out,
                        int64_t cap);
/// Piece text of `id` (returns its length, -1 if out of range); id of `piece` (unk if none).
int64_t coca_spm_id_to_piece(const coca_spm_model* model, int id, char* out, int64_t cap);
int coca_spm_piece_to_id(const coca_spm_model* model, const char* piece);
/// 1 if `id` is a control piece (bos, eos, pad, user control symbols), else 0.
int coca_spm_is_control(const coca_spm_model* model, int id);
/// Trains with SentencePieceTrainer's key/value options ("input", "model_prefix",
/// "vocab_size", ...). Returns 0 on success, -1 with `err` filled otherwise.
int coca_spm_train(const char* const* keys, const char* const* values, int n, char* err,
                   size_t err_cap);

#ifdef __cplusplus
}  // extern "C"
#endif
