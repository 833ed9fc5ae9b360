// Loader: one reader thread walks the per-source streams, worker threads decode, a
// per-source reorder buffer gives the samples back in stream order.
//
// Why the batches do not depend on threads or timing: each source is a fixed sequence of
// samples (SourceStream); each sample's result (decoded or skipped) depends only on the
// sample and its seed; and batch k takes, from each source, the next `quota` decoded
// samples in sequence order. Threads only change when a result is ready, not which.
#include "coca/data/loader.h"

#include <torch/cuda.h>
#include <torch/torch.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <condition_variable>
#include <deque>
#include <exception>
#include <map>
#include <mutex>
#include <thread>

#include "coca/common/error.h"
#include "coca/common/logging.h"
#include "data/detail/shuffle.h"

namespace coca::data {

namespace {

/// True when the tensor's storage overlaps `buffer`.
bool aliases(const torch::Tensor& t, const std::vector<uint8_t>& buffer) {
  if (buffer.empty() || !t.defined() || !t.has_storage()) return false;
  const auto* begin = static_cast<const uint8_t*>(t.storage().data());
  const auto* end = begin + t.storage().nbytes();
  return begin < buffer.data() + buffer.size() && buffer.data() < end;
}

std::string trim_copy(const std::string& s) {
  const char* ws = " \t\r\n";
  const size_t b = s.find_first_not_of(ws);
  return b == std::string::npos ? "" : s.substr(b, s.find_last_not_of(ws) - b + 1);
}

}  // namespace

std::string choose_caption(const RawSample& sample, uint64_t sample_seed) {
  if (sample.captions.empty()) return "";
  const uint64_t pick = detail::mix64(sample_seed ^ 0xCA9710ULL) % sample.captions.size();
  return sample.captions[static_cast<size_t>(pick)];
}

std::function<std::string(const RawSample&, const SourceConfig&, uint64_t, int64_t)>
make_text_hook(LabelTextFn label_text) {
  if (!label_text) throw std::invalid_argument("make_text_hook: label_text is empty");
  return [label_text = std::move(label_text)](const RawSample& sample, const SourceConfig& cfg,
                                              uint64_t seed, int64_t position) -> std::string {
    if (cfg.text == "label") {
      return sample.labels.empty() ? std::string() : label_text(sample.labels, seed, position);
    }
    return choose_caption(sample, seed);
  };
}

LoaderOptions make_loader_options(const DataConfig& cfg, int64_t batch_size, int rank,
                                  int world_size, int64_t default_workers) {
  LoaderOptions o;
  o.batch_size = batch_size;
  o.rank = rank;
  o.world_size = world_size;
  o.workers = cfg.workers > 0 ? cfg.workers : std::max<int64_t>(1, default_workers);
  o.prefetch = cfg.prefetch;
  o.report_bad_every = cfg.report_bad_every;
  o.seed = cfg.seed;
  o.pin_memory = torch::cuda::is_available();
  return o;
}

namespace detail {

/// Recycles the memory of batch tensors. A fresh [B, 3, S, S] tensor per batch (38 MB for 64
/// images of 224^2) comes from mmap as zeroed pages, and faulting them in costs the consumer
/// thread more than copying the samples; a returned buffer is reused by a later batch.
/// Tensors keep the pool alive (their deleter holds it), so they may outlive the loader.
class BatchBufferPool : public std::enable_shared_from_this<BatchBufferPool> {
 public:
  explicit BatchBufferPool(size_t keep) : keep_(keep) {}
  ~BatchBufferPool() {
    for (const auto& b : free_) std::free(b.second);
  }
  BatchBufferPool(const BatchBufferPool&) = delete;
  BatchBufferPool& operator=(const BatchBufferPool&) = delete;

  /// An uninitialised contiguous CPU tensor.
  torch::Tensor empty(const std::vector<int64_t>& shape, torch::ScalarType dtype) {
    int64_t numel = 1;
    for (int64_t d : shape) numel *= d;
    constexpr size_t kAlign = 64;
    const size_t bytes =
        (static_cast<size_t>(numel) * c10::elementSize(dtype) + kAlign - 1) / kAlign * kAlign;
    void* p = nullptr;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      for (auto it = free_.begin(); it != free_.end(); ++it) {
        if (it->first == bytes) {
          p = it->second;
          free_.erase(it);
          break;
        }
      }
    }
    if (p == nullptr) p = std::aligned_alloc(kAlign, std::max(bytes, kAlign));
    if (p == nullptr) throw std::bad_alloc();
    auto self = shared_from_this();
    return torch::from_blob(
        p, shape, [self, bytes](void* q) { self->give_back(q, bytes); },
        torch::TensorOptions().dtype(dtype));
  }

 private:
  void give_back(void* p, size_t bytes) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (free_.size() < keep_) {
        free_.emplace_back(bytes, p);
        return;
      }
    }
    std::free(p);
  }

  const size_t keep_;
  std::mutex mutex_;
  std::vector<std::pair<size_t, void*>> free_;
};

}  // namespace detail

struct Loader::Impl {
  struct SkipRecord {
    SkipReason reason = SkipReason::other;
    std::string shard;
    std::string key;
    std::string detail;
  };

  /// A sample on its way through the workers, and then its result.
  struct Item {
    int64_t source = 0;
    int64_t seq = 0;
    RawSample raw;                    ///< cleared once processed (keeps key and labels)
    SourceCursor after;               ///< stream position after this sample
    std::vector<SkipRecord> skips;    ///< reader skips just before this sample
    std::string shard;
    uint64_t sample_seed = 0;
    int64_t position = 0;
    // Result
    bool ok = false;
    SkipRecord failure;
    std::exception_ptr fatal;
    torch::Tensor image;
    torch::Tensor tokens;
    std::string text;
  };

  std::vector<std::shared_ptr<const Source>> sources;
  LoaderOptions options;
  LoaderHooks hooks;
  std::vector<int64_t> quotas;
  std::vector<std::string> names;

  // Reader thread only.
  std::vector<std::unique_ptr<SourceStream>> streams;

  // Shared, under `mutex`.
  std::mutex mutex;
  std::condition_variable work_cv;    // workers: an item is queued, or stop
  std::condition_variable room_cv;    // reader: a source has room, or stop
  std::condition_variable result_cv;  // consumer: a result is ready, or the reader failed
  std::deque<std::unique_ptr<Item>> queue;
  std::vector<std::map<int64_t, std::unique_ptr<Item>>> results;
  std::vector<int64_t> dispatched;
  std::vector<int64_t> consumed;
  std::vector<int64_t> capacity;
  bool stop = false;
  std::exception_ptr reader_error;

  // Consumer thread only.
  DataCursor cursor;
  std::vector<SourceStats> stats;
  std::exception_ptr failed;

  std::thread reader;
  std::vector<std::thread> workers;
  std::shared_ptr<detail::BatchBufferPool> pool;  ///< memory of the batch images (consumer thread)

  void read_loop();
  void work_loop();
  std::unique_ptr<Item> take(size_t s);
  void account_skip(size_t s, const SkipRecord& r);
  void shutdown();
};

Loader::Loader(std::vector<std::shared_ptr<const Source>> sources, LoaderOptions options,
               LoaderHooks hooks, const DataCursor& start)
    : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  if (sources.empty()) throw std::invalid_argument("Loader: no sources");
  for (const auto& s : sources) {
    if (!s) throw std::invalid_argument("Loader: null source");
  }
  if (options.batch_size < 1 || options.workers < 1 || options.prefetch < 1 ||
      options.report_bad_every < 1 || options.world_size < 1 || options.rank < 0 ||
      options.rank >= options.world_size) {
    throw std::invalid_argument(fmt::format(
        "Loader: bad options (batch_size {} >= 1, workers {} >= 1, prefetch {} >= 1, "
        "report_bad_every {} >= 1, rank {} in [0, world_size {}))",
        options.batch_size, options.workers, options.prefetch, options.report_bad_every,
        options.rank, options.world_size));
  }
  if (!hooks.image_transform || !hooks.make_text || !hooks.tokenize) {
    throw std::invalid_argument("Loader: image_transform, make_text and tokenize hooks are required");
  }
  std::vector<double> fractions;
  for (const auto& s : sources) fractions.push_back(s->config().fraction);
  m.quotas = mixture_quotas(fractions, options.batch_size);
  for (size_t i = 0; i < sources.size(); ++i) {
    const auto& cfg = sources[i]->config();
    m.names.push_back(cfg.name.empty() ? cfg.type : cfg.name);
    if (m.quotas[i] == 0) {
      throw ConfigError(fmt::format(
          "data.sources.{}.fraction: source '{}' ({}) gets 0 of the {} samples of a batch; raise "
          "its fraction or the batch size",
          i, m.names[i], cfg.fraction, options.batch_size));
    }
  }
  const size_t n = sources.size();
  if (!start.sources.empty()) {
    if (start.sources.size() != n || start.rank != options.rank ||
        start.world_size != options.world_size) {
      throw std::invalid_argument(fmt::format(
          "Loader: the data cursor was taken with {} sources on rank {} of {}, this loader has {} "
          "sources on rank {} of {}",
          start.sources.size(), start.rank, start.world_size, n, options.rank,
          options.world_size));
    }
    m.cursor = start;
  } else {
    m.cursor = DataCursor{};
    m.cursor.batches = start.batches;
    m.cursor.sources.assign(n, SourceCursor{});
  }
  m.cursor.rank = options.rank;
  m.cursor.world_size = options.world_size;
  m.sources = std::move(sources);
  m.options = options;
  m.hooks = std::move(hooks);
  for (size_t i = 0; i < n; ++i) {
    m.streams.push_back(std::make_unique<SourceStream>(m.sources[i], static_cast<int64_t>(i),
                                                       options.seed, options.rank,
                                                       options.world_size, m.cursor.sources[i]));
    log::info("[data] source '{}' ({}): {} shards, {} of {} samples per batch, {} split across "
              "{} rank(s), starting at epoch {}",
              m.names[i], m.sources[i]->config().type, m.sources[i]->shards().size(), m.quotas[i],
              options.batch_size, m.streams[i]->splits_samples() ? "sample" : "shard",
              options.world_size, m.cursor.sources[i].epoch);
    SourceStats st;
    st.name = m.names[i];
    st.quota = m.quotas[i];
    st.epoch = m.cursor.sources[i].epoch;
    st.samples = m.cursor.sources[i].samples;
    m.stats.push_back(st);
  }
  m.results.resize(n);
  m.dispatched.assign(n, 0);
  m.consumed.assign(n, 0);
  for (size_t i = 0; i < n; ++i) m.capacity.push_back(m.quotas[i] * options.prefetch);

  m.pool = std::make_shared<detail::BatchBufferPool>(4);
  m.reader = std::thread([&m] { m.read_loop(); });
  try {
    for (int64_t w = 0; w < options.workers; ++w) m.workers.emplace_back([&m] { m.work_loop(); });
  } catch (...) {
    m.shutdown();
    throw;
  }
}

Loader::~Loader() { impl_->shutdown(); }

void Loader::Impl::shutdown() {
  {
    std::lock_guard<std::mutex> lock(mutex);
    stop = true;
  }
  work_cv.notify_all();
  room_cv.notify_all();
  result_cv.notify_all();
  if (reader.joinable()) reader.join();
  for (auto& w : workers) {
    if (w.joinable()) w.join();
  }
}

void Loader::Impl::read_loop() {
  const size_t n = sources.size();
  std::vector<std::vector<SkipRecord>> pending(n);
  std::vector<int64_t> next_seq(n, 0);
  try {
    for (;;) {
      size_t s = 0;
      {
        std::unique_lock<std::mutex> lock(mutex);
        // The source with the least decoded-ahead work relative to its quota goes next.
        auto pick = [&]() -> bool {
          bool found = false;
          double best = 0;
          for (size_t i = 0; i < n; ++i) {
            const int64_t ahead = dispatched[i] - consumed[i];
            if (ahead >= capacity[i]) continue;
            const double load = static_cast<double>(ahead) / static_cast<double>(quotas[i]);
            if (!found || load < best) {
              found = true;
              best = load;
              s = i;
            }
          }
          return found;
        };
        room_cv.wait(lock, [&] { return stop || pick(); });
        if (stop) return;
      }
      auto item = std::make_unique<Item>();
      SourceStream& stream = *streams[s];
      const SkipFn on_skip = [&](SkipReason r, const std::string& shard, const std::string& key,
                                 const std::string& detail) {
        pending[s].push_back(SkipRecord{r, shard, key, detail});
      };
      item->position = stream.cursor().drawn;
      stream.next(item->raw, on_skip);
      item->source = static_cast<int64_t>(s);
      item->seq = next_seq[s]++;
      item->after = stream.cursor();
      item->skips = std::move(pending[s]);
      pending[s].clear();
      const int64_t shard = stream.last_shard();
      item->shard = sources[s]->shards()[static_cast<size_t>(shard)].name;
      item->sample_seed = detail::hash_values(
          {options.seed, static_cast<uint64_t>(s), static_cast<uint64_t>(item->after.epoch),
           static_cast<uint64_t>(shard), static_cast<uint64_t>(stream.last_offset())});
      {
        std::lock_guard<std::mutex> lock(mutex);
        if (stop) return;
        queue.push_back(std::move(item));
        ++dispatched[s];
      }
      work_cv.notify_one();
    }
  } catch (...) {
    {
      std::lock_guard<std::mutex> lock(mutex);
      reader_error = std::current_exception();
    }
    result_cv.notify_all();
  }
}

void Loader::Impl::work_loop() {
  for (;;) {
    std::unique_ptr<Item> item;
    {
      std::unique_lock<std::mutex> lock(mutex);
      work_cv.wait(lock, [&] { return stop || !queue.empty(); });
      if (stop) return;
      item = std::move(queue.front());
      queue.pop_front();
    }
    const RawSample& raw = item->raw;
    const SourceConfig& cfg = sources[static_cast<size_t>(item->source)]->config();
    try {
      bool good = true;
      try {
        item->image = hooks.image_transform(raw, item->sample_seed).contiguous();
        // A transform that returns a view of the sample's own buffer (from_blob) would
        // dangle once the buffer is dropped below: copy it out.
        if (aliases(item->image, raw.pixels) || aliases(item->image, raw.image_bytes)) {
          item->image = item->image.clone();
        }
      } catch (const DataError& e) {
        item->failure = SkipRecord{SkipReason::corrupt_image, item->shard, raw.key, e.what()};
        good = false;
      }
      if (good) {
        try {
          item->text = hooks.make_text(raw, cfg, item->sample_seed, item->position);
        } catch (const DataError& e) {
          item->failure = SkipRecord{SkipReason::other, item->shard, raw.key, e.what()};
          good = false;
        }
      }
      if (good && trim_copy(item->text).empty()) {
        item->failure = SkipRecord{SkipReason::empty_text, item->shard, raw.key, "empty text"};
        good = false;
      }
      if (good) {
        torch::Tensor tokens = hooks.tokenize({item->text});
        TORCH_CHECK(tokens.dim() == 2 && tokens.size(0) == 1,
                    "Loader: tokenize({text}) must return [1, T], got ", tokens.sizes(),
                    " for sample '", raw.key, "'");
        item->tokens = tokens[0].to(torch::kLong).contiguous();
        TORCH_CHECK(item->image.dim() == 3, "Loader: image_transform must return [C, S, S], got ",
                    item->image.sizes(), " for sample '", raw.key, "'");
      }
      item->ok = good;
    } catch (...) {
      item->fatal = std::current_exception();
    }
    // Keep what the batch needs, drop the encoded bytes and pixels.
    item->raw.image_bytes = std::vector<uint8_t>();  // move-assignment frees the buffer
    item->raw.pixels = std::vector<uint8_t>();
    item->raw.captions = std::vector<std::string>();
    {
      std::lock_guard<std::mutex> lock(mutex);
      const auto s = static_cast<size_t>(item->source);
      const int64_t seq = item->seq;
      results[s][seq] = std::move(item);
    }
    result_cv.notify_all();
  }
}

std::unique_ptr<Loader::Impl::Item> Loader::Impl::take(size_t s) {
  std::unique_ptr<Item> item;
  {
    std::unique_lock<std::mutex> lock(mutex);
    const int64_t want = consumed[s];
    result_cv.wait(lock, [&] {
      return results[s].count(want) > 0 || (reader_error && dispatched[s] == want);
    });
    auto it = results[s].find(want);
    if (it == results[s].end()) std::rethrow_exception(reader_error);
    item = std::move(it->second);
    results[s].erase(it);
    ++consumed[s];
  }
  room_cv.notify_one();
  return item;
}

void Loader::Impl::account_skip(size_t s, const SkipRecord& r) {
  const int64_t count = ++stats[s].skipped[static_cast<size_t>(r.reason)];
  if (count == 1 || count % options.report_bad_every == 0) {
    log::warn_all_ranks("[data] {}: {} sample(s) skipped as {}; latest '{}' in {}: {}", names[s],
                        count, to_string(r.reason), r.key, r.shard, r.detail);
  }
}

Batch Loader::next() {
  Impl& m = *impl_;
  if (m.failed) std::rethrow_exception(m.failed);
  std::vector<std::unique_ptr<Impl::Item>> picked;
  picked.reserve(static_cast<size_t>(m.options.batch_size));
  try {
    for (size_t s = 0; s < m.sources.size(); ++s) {
      SourceCursor& cur = m.cursor.sources[s];
      for (int64_t k = 0; k < m.quotas[s];) {
        std::unique_ptr<Impl::Item> item = m.take(s);
        if (item->fatal) std::rethrow_exception(item->fatal);
        for (const auto& r : item->skips) m.account_skip(s, r);
        if (item->after.epoch != cur.epoch) {
          if (cur.readable == 0) {
            const auto& st = m.stats[s];
            std::string counts;
            for (size_t r = 0; r < kSkipReasonCount; ++r) {
              if (st.skipped[r] > 0) {
                counts += fmt::format("{}{}={}", counts.empty() ? "" : ", ",
                                      to_string(static_cast<SkipReason>(r)), st.skipped[r]);
              }
            }
            throw DataError(m.sources[s]->config().path, "",
                            fmt::format("source '{}' had no readable sample in epoch {} on rank "
                                        "{} (skipped: {})",
                                        m.names[s], cur.epoch, m.options.rank,
                                        counts.empty() ? "none" : counts));
          }
          cur.readable = 0;
          log::info("[data] source '{}': epoch {} begins after {} samples", m.names[s],
                    item->after.epoch, cur.samples);
        }
        const int64_t readable = cur.readable;
        const int64_t samples = cur.samples;
        cur = item->after;
        cur.readable = readable;
        cur.samples = samples;
        m.stats[s].epoch = cur.epoch;
        if (!item->ok) {
          m.account_skip(s, item->failure);
          continue;
        }
        ++cur.readable;
        ++cur.samples;
        ++m.stats[s].samples;
        picked.push_back(std::move(item));
        ++k;
      }
    }
  } catch (...) {
    m.failed = std::current_exception();
    throw;
  }

  Batch batch;
  const auto b = static_cast<int64_t>(picked.size());
  const torch::Tensor& first_image = picked.front()->image;
  const torch::Tensor& first_tokens = picked.front()->tokens;
  std::vector<int64_t> image_shape{b};
  for (int64_t d : first_image.sizes()) image_shape.push_back(d);
  batch.images = m.options.pin_memory
                     ? torch::empty(image_shape, torch::TensorOptions()
                                                     .dtype(first_image.scalar_type())
                                                     .pinned_memory(true))
                     : m.pool->empty(image_shape, first_image.scalar_type());
  const auto image_bytes = static_cast<size_t>(first_image.numel()) * first_image.element_size();
  auto* image_dst = static_cast<uint8_t*>(batch.images.data_ptr());
  batch.text = torch::empty({b, first_tokens.size(0)},
                            torch::TensorOptions().dtype(torch::kLong).pinned_memory(m.options.pin_memory));
  for (int64_t i = 0; i < b; ++i) {
    Impl::Item& it = *picked[static_cast<size_t>(i)];
    TORCH_CHECK(it.image.sizes() == first_image.sizes(), "Loader: image of sample '", it.raw.key,
                "' has shape ", it.image.sizes(), ", the batch has ", first_image.sizes());
    TORCH_CHECK(it.tokens.sizes() == first_tokens.sizes(), "Loader: tokens of sample '",
                it.raw.key, "' have shape ", it.tokens.sizes(), ", the batch has ",
                first_tokens.sizes());
    // Plain memcpy: Tensor::copy_ would dispatch per sample and may start OpenMP threads
    // that compete with the decoding workers.
    TORCH_CHECK(it.image.scalar_type() == first_image.scalar_type() && it.image.is_contiguous(),
                "Loader: image of sample '", it.raw.key, "' is not a contiguous ",
                first_image.scalar_type(), " tensor");
    std::memcpy(image_dst + static_cast<size_t>(i) * image_bytes, it.image.data_ptr(),
                image_bytes);
    batch.text[i].copy_(it.tokens);
    batch.source_index.push_back(it.source);
    batch.keys.push_back(std::move(it.raw.key));
    batch.texts.push_back(std::move(it.text));
    batch.labels.push_back(std::move(it.raw.labels));
    batch.label_ids.push_back(std::move(it.raw.label_ids));
  }
  batch.index = m.cursor.batches++;
  return batch;
}

const DataCursor& Loader::cursor() const { return impl_->cursor; }

std::vector<SourceStats> Loader::stats() const { return impl_->stats; }

const std::vector<int64_t>& Loader::quotas() const { return impl_->quotas; }

LoaderThroughput measure_loader_throughput(std::vector<std::shared_ptr<const Source>> sources,
                                           const LoaderOptions& options,
                                           const LoaderHooks& hooks, int64_t batches) {
  if (batches < 1) throw std::invalid_argument("measure_loader_throughput: batches must be >= 1");
  Loader loader(std::move(sources), options, hooks);
  loader.next();  // warm-up: threads started, first files cached
  const auto cpu_time = [] {
    timespec ts{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
  };
  const double cpu0 = cpu_time();
  const auto t0 = std::chrono::steady_clock::now();
  int64_t images = 0;
  for (int64_t i = 0; i < batches; ++i) images += loader.next().size();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return LoaderThroughput{options.workers, images, seconds,
                          seconds > 0 ? static_cast<double>(images) / seconds : 0.0,
                          cpu_time() - cpu0};
}

}  // namespace coca::data
