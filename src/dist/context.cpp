#include "coca/dist/context.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <torch/cuda.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

#include "coca/common/error.h"
#include "coca/common/logging.h"
#include "dist/detail/c10d.h"

namespace coca::dist {
namespace {

const char* nonempty(const char* v) { return (v != nullptr && *v != '\0') ? v : nullptr; }

int parse_int(const EnvLookup& env, const char* name, int fallback, int min_value) {
  const char* v = nonempty(env(name));
  if (v == nullptr) return fallback;
  char* end = nullptr;
  errno = 0;
  const long x = std::strtol(v, &end, 10);
  if (errno != 0 || end == v || *end != '\0' || x < min_value || x > 1000000) {
    throw ConfigError(
        fmt::format("environment variable {}='{}' must be an integer >= {}", name, v, min_value));
  }
  return static_cast<int>(x);
}

void check_rank(const LaunchEnv& e, const char* rank_var, const char* world_var) {
  if (e.rank >= e.world_size) {
    throw ConfigError(
        fmt::format("{}={} must be smaller than {}={}", rank_var, e.rank, world_var, e.world_size));
  }
}

bool is_loopback(const std::string& addr) {
  return addr == "localhost" || addr.rfind("127.", 0) == 0 || addr == "::1";
}

// Splits at commas that are not inside brackets.
std::vector<std::string> split_top_level(const std::string& s) {
  std::vector<std::string> parts;
  std::string cur;
  int depth = 0;
  for (char c : s) {
    if (c == '[') ++depth;
    if (c == ']') --depth;
    if (depth < 0) throw std::invalid_argument("unbalanced ']' in Slurm node list '" + s + "'");
    if (c == ',' && depth == 0) {
      if (!cur.empty()) parts.push_back(cur);
      cur.clear();
    } else {
      cur.push_back(c);
    }
  }
  if (depth != 0) throw std::invalid_argument("unbalanced '[' in Slurm node list '" + s + "'");
  if (!cur.empty()) parts.push_back(cur);
  return parts;
}

// "01-04,07" -> {"01","02","03","04","07"} (zero padding kept from the range start).
std::vector<std::string> expand_range_list(const std::string& body, const std::string& all) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= body.size()) {
    size_t comma = body.find(',', start);
    if (comma == std::string::npos) comma = body.size();
    const std::string item = body.substr(start, comma - start);
    const size_t dash = item.find('-');
    auto is_digits = [](const std::string& t) {
      return !t.empty() && t.find_first_not_of("0123456789") == std::string::npos;
    };
    if (dash == std::string::npos) {
      if (!is_digits(item))
        throw std::invalid_argument("bad item '" + item + "' in Slurm node list '" + all + "'");
      out.push_back(item);
    } else {
      const std::string a = item.substr(0, dash), b = item.substr(dash + 1);
      if (!is_digits(a) || !is_digits(b)) {
        throw std::invalid_argument("bad range '" + item + "' in Slurm node list '" + all + "'");
      }
      const long lo = std::stol(a), hi = std::stol(b);
      if (hi < lo || hi - lo > 100000) {
        throw std::invalid_argument("bad range '" + item + "' in Slurm node list '" + all + "'");
      }
      for (long i = lo; i <= hi; ++i) {
        std::string n = std::to_string(i);
        if (n.size() < a.size()) n.insert(0, a.size() - n.size(), '0');
        out.push_back(n);
      }
    }
    start = comma + 1;
  }
  return out;
}

}  // namespace

EnvLookup process_env() {
  return [](const char* name) { return std::getenv(name); };
}

std::vector<std::string> expand_slurm_nodelist(const std::string& nodelist) {
  std::vector<std::string> hosts;
  for (const std::string& part : split_top_level(nodelist)) {
    // Expand bracket groups left to right as a product.
    std::vector<std::string> prefixes{""};
    size_t i = 0;
    while (i < part.size()) {
      const size_t open = part.find('[', i);
      const std::string literal =
          part.substr(i, open == std::string::npos ? std::string::npos : open - i);
      for (auto& p : prefixes) p += literal;
      if (open == std::string::npos) break;
      const size_t close = part.find(']', open);
      if (close == std::string::npos) {
        throw std::invalid_argument("unbalanced '[' in Slurm node list '" + nodelist + "'");
      }
      const auto items = expand_range_list(part.substr(open + 1, close - open - 1), nodelist);
      std::vector<std::string> next;
      next.reserve(prefixes.size() * items.size());
      for (const auto& p : prefixes) {
        for (const auto& it : items) next.push_back(p + it);
      }
      prefixes = std::move(next);
      i = close + 1;
    }
    hosts.insert(hosts.end(), prefixes.begin(), prefixes.end());
  }
  return hosts;
}

LaunchEnv read_launch_env(const EnvLookup& env) {
  LaunchEnv e;
  if (nonempty(env("RANK")) && nonempty(env("WORLD_SIZE"))) {
    e.source = "env";
    e.world_size = parse_int(env, "WORLD_SIZE", 1, 1);
    e.rank = parse_int(env, "RANK", 0, 0);
    check_rank(e, "RANK", "WORLD_SIZE");
    e.local_rank = parse_int(env, "LOCAL_RANK", e.rank, 0);
    e.local_world_size = parse_int(env, "LOCAL_WORLD_SIZE", e.world_size, 1);
    if (const char* addr = nonempty(env("MASTER_ADDR"))) e.master_addr = addr;
    e.master_port = parse_int(env, "MASTER_PORT", 29500, 1);
  } else if (nonempty(env("SLURM_PROCID")) && nonempty(env("SLURM_NTASKS"))) {
    e.source = "slurm";
    e.world_size = parse_int(env, "SLURM_NTASKS", 1, 1);
    e.rank = parse_int(env, "SLURM_PROCID", 0, 0);
    check_rank(e, "SLURM_PROCID", "SLURM_NTASKS");
    e.local_rank = parse_int(env, "SLURM_LOCALID", 0, 0);
    // SLURM_NTASKS_PER_NODE may read "4(x2)": its leading number is what we need.
    if (const char* per_node = nonempty(env("SLURM_NTASKS_PER_NODE"))) {
      const int n = std::atoi(per_node);
      if (n > 0) e.local_world_size = n;
    }
    if (const char* addr = nonempty(env("MASTER_ADDR"))) {
      e.master_addr = addr;
    } else {
      const char* list = nonempty(env("SLURM_STEP_NODELIST"));
      if (list == nullptr) list = nonempty(env("SLURM_NODELIST"));
      if (list == nullptr) list = nonempty(env("SLURM_JOB_NODELIST"));
      if (list != nullptr) {
        std::vector<std::string> hosts;
        try {
          hosts = expand_slurm_nodelist(list);
        } catch (const std::invalid_argument& ex) {
          throw ConfigError(std::string("SLURM_NODELIST: ") + ex.what());
        }
        if (!hosts.empty()) e.master_addr = hosts.front();
      }
    }
    e.master_port = parse_int(env, "MASTER_PORT", 29500, 1);
  }
  return e;
}

std::string resolve_backend(const std::string& requested) {
#if defined(COCA_HAVE_NCCL)
  constexpr bool kHaveNccl = true;
#else
  constexpr bool kHaveNccl = false;
#endif
#if defined(COCA_HAVE_GLOO)
  constexpr bool kHaveGloo = true;
#else
  constexpr bool kHaveGloo = false;
#endif
  if (requested == "nccl") {
    if (!kHaveNccl) {
      throw ConfigError(
          "dist.backend: 'nccl' is not available in this build (LibTorch without NCCL); use gloo");
    }
    return "nccl";
  }
  if (requested == "gloo") {
    if (!kHaveGloo) {
      throw ConfigError(
          "dist.backend: 'gloo' is not available in this build (LibTorch without "
          "c10d Gloo headers)");
    }
    return "gloo";
  }
  if (requested == "auto" || requested.empty()) {
    if (kHaveNccl && torch::cuda::is_available()) return "nccl";
    if (kHaveGloo) return "gloo";
    throw ConfigError("dist.backend: neither gloo nor nccl is available in this build");
  }
  throw ConfigError("dist.backend: expected auto, gloo or nccl, got '" + requested + "'");
}

Context init_distributed(const DistConfig& config) {
  return init_distributed(config, read_launch_env());
}

Context init_distributed(const DistConfig& config, const LaunchEnv& env_in) {
  LaunchEnv env = env_in;
  if (!config.master_addr.empty()) env.master_addr = config.master_addr;
  if (config.master_port > 0) env.master_port = static_cast<int>(config.master_port);
  const std::string backend = resolve_backend(config.backend);

  Context ctx;
  ctx.rank = env.rank;
  ctx.world_size = env.world_size;
  ctx.local_rank = env.local_rank;
  ctx.local_world_size = env.local_world_size;
  ctx.timeout = std::chrono::milliseconds(config.timeout_s * 1000);
  log::set_rank(ctx.rank);
  if (env.world_size <= 1) return ctx;  // single process: no group, collectives are no-ops
  if (env.master_port <= 0 || env.master_port > 65535) {
    throw ConfigError(
        fmt::format("dist.master_port / MASTER_PORT: {} is not a TCP port", env.master_port));
  }

  c10d::TCPStoreOptions store_opts;
  store_opts.port = static_cast<std::uint16_t>(env.master_port);
  store_opts.isServer = env.rank == 0;
  store_opts.numWorkers = static_cast<std::size_t>(env.world_size);
  store_opts.waitWorkers = true;
  store_opts.timeout = ctx.timeout;
  try {
    ctx.store = c10::make_intrusive<c10d::TCPStore>(env.master_addr, store_opts);
  } catch (const std::exception& e) {
    throw std::runtime_error(fmt::format(
        "dist: rank {} of {} could not rendezvous at {}:{} within {} s (MASTER_ADDR/"
        "MASTER_PORT, dist.timeout_s): {}",
        env.rank, env.world_size, env.master_addr, env.master_port, config.timeout_s, e.what()));
  }

  ctx.backend = backend;
  try {
    if (backend == "gloo") {
#if defined(COCA_HAVE_GLOO)
      ctx.pg = detail::make_gloo_group(ctx.store, env.rank, env.world_size, ctx.timeout,
                                       is_loopback(env.master_addr),
                                       nonempty(std::getenv("GLOO_SOCKET_IFNAME")));
#endif
    } else {
#if defined(COCA_HAVE_NCCL)
      ctx.pg = detail::make_nccl_group(ctx.store, env.rank, env.world_size, ctx.timeout);
      ctx.device = torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(env.local_rank));
#endif
    }
  } catch (const std::exception& e) {
    throw std::runtime_error(fmt::format("dist: rank {} of {} could not create the {} group: {}",
                                         env.rank, env.world_size, backend, e.what()));
  }
  log::info("[dist] rank {}/{} (local {}/{}) backend {} via {}:{} ({})", ctx.rank, ctx.world_size,
            ctx.local_rank, ctx.local_world_size, backend, env.master_addr, env.master_port,
            env.source);
  return ctx;
}

int find_free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0)
    throw std::runtime_error(std::string("dist: socket() failed: ") + std::strerror(errno));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    const std::string err = std::strerror(errno);
    ::close(fd);
    throw std::runtime_error("dist: could not find a free port: " + err);
  }
  const int port = ntohs(addr.sin_port);
  ::close(fd);
  return port;
}

}  // namespace coca::dist
