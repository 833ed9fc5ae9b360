#include "coca/dist/launch.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "coca/common/runtime.h"
#include "coca/dist/context.h"

extern char** environ;

namespace coca::dist {
namespace {

// Self-pipe: the signal handler writes the signal number, the poll loop reads it.
int g_signal_pipe[2] = {-1, -1};

void on_signal(int sig) {
  const int saved = errno;
  const unsigned char b = static_cast<unsigned char>(sig);
  [[maybe_unused]] const ssize_t n = ::write(g_signal_pipe[1], &b, 1);
  errno = saved;
}

void write_all(int fd, const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    const ssize_t n = ::write(fd, s.data() + off, s.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;  // our own stdout is gone: nothing sensible left to do with the output
    }
    off += static_cast<size_t>(n);
  }
}

struct Stream {
  int fd = -1;     // read end, -1 once closed
  int out_fd = 1;  // where prefixed lines go
  int rank = 0;
  std::string partial;
};

struct Child {
  pid_t pid = -1;
  int rank = 0;
  bool running = false;
  int code = 0;
};

int exit_code_of(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 1;
}

void flush_lines(Stream& s, bool at_eof) {
  size_t start = 0;
  std::string out;
  while (true) {
    const size_t nl = s.partial.find('\n', start);
    if (nl == std::string::npos) break;
    out += fmt::format("[rank {}] ", s.rank);
    out.append(s.partial, start, nl - start + 1);
    start = nl + 1;
  }
  s.partial.erase(0, start);
  if (at_eof && !s.partial.empty()) {
    out += fmt::format("[rank {}] {}\n", s.rank, s.partial);
    s.partial.clear();
  }
  if (!out.empty()) write_all(s.out_fd, out);
}

std::vector<std::string> child_environment(const LaunchOptions& o, int rank, int port,
                                           int threads) {
  std::vector<std::string> env;
  const char* replaced[] = {
      "RANK=",           "WORLD_SIZE=",  "LOCAL_RANK=",      "LOCAL_WORLD_SIZE=",
      "MASTER_ADDR=",    "MASTER_PORT=", "OMP_NUM_THREADS=", "OPENBLAS_NUM_THREADS=",
      "COCA_THREAD_ENV="};
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    bool skip = false;
    for (const char* r : replaced) skip = skip || std::strncmp(*e, r, std::strlen(r)) == 0;
    if (!skip) env.emplace_back(*e);
  }
  env.push_back("RANK=" + std::to_string(rank));
  env.push_back("WORLD_SIZE=" + std::to_string(o.nproc));
  env.push_back("LOCAL_RANK=" + std::to_string(rank));
  env.push_back("LOCAL_WORLD_SIZE=" + std::to_string(o.nproc));
  env.push_back("MASTER_ADDR=" + o.master_addr);
  env.push_back("MASTER_PORT=" + std::to_string(port));
  env.push_back("OMP_NUM_THREADS=" + std::to_string(threads));
  env.push_back("OPENBLAS_NUM_THREADS=" + std::to_string(threads));
  return env;
}

}  // namespace

int launch(const LaunchOptions& o) {
  if (o.nproc < 1)
    throw std::invalid_argument("launch: --nproc must be >= 1, got " + std::to_string(o.nproc));
  if (o.master_port < 0 || o.master_port > 65535) {
    throw std::invalid_argument("launch: --master-port must be in [0, 65535], got " +
                                std::to_string(o.master_port));
  }
  if (o.args.empty())
    throw std::invalid_argument("launch: no command given (coca launch --nproc N -- train ...)");
  const int port = o.master_port > 0 ? o.master_port : find_free_port();
  const int threads =
      o.threads_per_proc > 0
          ? o.threads_per_proc
          : static_cast<int>(std::max<int64_t>(1, runtime::available_cores() / o.nproc));

  if (::pipe2(g_signal_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
    throw std::runtime_error(std::string("launch: pipe failed: ") + std::strerror(errno));
  }
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  struct sigaction old_int {
  }, old_term{};
  ::sigaction(SIGINT, &sa, &old_int);
  ::sigaction(SIGTERM, &sa, &old_term);
  ::fflush(nullptr);

  std::vector<Child> children(static_cast<size_t>(o.nproc));
  std::vector<Stream> streams;
  for (int rank = 0; rank < o.nproc; ++rank) {
    int out[2], err[2];
    if (::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0) {
      throw std::runtime_error(std::string("launch: pipe failed: ") + std::strerror(errno));
    }
    // Everything the child needs is built before fork: only async-signal-safe calls after.
    const std::vector<std::string> env = child_environment(o, rank, port, threads);
    std::vector<char*> envp;
    for (const auto& e : env) envp.push_back(const_cast<char*>(e.c_str()));
    envp.push_back(nullptr);
    std::vector<std::string> argv_s{o.executable};
    argv_s.insert(argv_s.end(), o.args.begin(), o.args.end());
    std::vector<char*> argv;
    for (const auto& a : argv_s) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);

    const pid_t pid = ::fork();
    if (pid < 0)
      throw std::runtime_error(std::string("launch: fork failed: ") + std::strerror(errno));
    if (pid == 0) {
      // Own process group: a terminal's Ctrl-C reaches the children only through us
      // (once), and stopping a child also stops what it started.
      ::setpgid(0, 0);
      // If the launcher dies without stopping us (SIGKILL), do not linger.
      ::prctl(PR_SET_PDEATHSIG, SIGTERM);
      ::signal(SIGINT, SIG_DFL);
      ::signal(SIGTERM, SIG_DFL);
      ::dup2(out[1], 1);
      ::dup2(err[1], 2);
      ::execve(o.executable.c_str(), argv.data(), envp.data());
      const char msg[] = "launch: exec failed\n";
      [[maybe_unused]] const ssize_t n = ::write(2, msg, sizeof(msg) - 1);
      ::_exit(127);
    }
    ::setpgid(pid, pid);
    ::close(out[1]);
    ::close(err[1]);
    children[static_cast<size_t>(rank)] = Child{pid, rank, true, 0};
    streams.push_back(Stream{out[0], 1, rank, {}});
    streams.push_back(Stream{err[0], 2, rank, {}});
  }

  using Clock = std::chrono::steady_clock;
  int result = 0;
  bool stopping = false;
  Clock::time_point kill_at{};
  bool killed = false;
  int received_signal = 0;
  auto signal_children = [&](int sig) {
    for (auto& c : children) {
      if (c.running) ::kill(-c.pid, sig);
    }
  };
  auto stop_all = [&] {
    if (stopping) return;
    stopping = true;
    signal_children(SIGTERM);
    kill_at = Clock::now() + std::chrono::milliseconds(static_cast<int64_t>(o.grace_s * 1000));
  };

  while (true) {
    bool any_running = false;
    for (auto& c : children) {
      if (!c.running) continue;
      int status = 0;
      const pid_t r = ::waitpid(c.pid, &status, WNOHANG);
      if (r == c.pid) {
        c.running = false;
        c.code = exit_code_of(status);
        if (c.code != 0 && result == 0) {
          result = c.code;
          write_all(2, fmt::format("[launch] rank {} exited with code {}; stopping the others\n",
                                   c.rank, c.code));
          stop_all();
        }
      } else {
        any_running = true;
      }
    }
    bool any_open = false;
    for (const auto& s : streams) any_open = any_open || s.fd >= 0;
    if (!any_running && !any_open) break;
    if (!any_running && stopping && killed) break;  // pipes held open by grandchildren

    if (stopping && !killed && Clock::now() >= kill_at) {
      signal_children(SIGKILL);
      killed = true;
    }

    std::vector<pollfd> fds;
    fds.push_back(pollfd{g_signal_pipe[0], POLLIN, 0});
    for (const auto& s : streams) {
      if (s.fd >= 0) fds.push_back(pollfd{s.fd, POLLIN, 0});
    }
    const int n = ::poll(fds.data(), fds.size(), any_running ? 50 : 200);
    if (n < 0 && errno != EINTR) break;
    if (n <= 0) {
      if (!any_running) {
        // Children are gone but someone still holds a pipe: do not wait for ever.
        for (auto& s : streams) {
          if (s.fd >= 0) {
            flush_lines(s, true);
            ::close(s.fd);
            s.fd = -1;
          }
        }
      }
      continue;
    }
    if (fds[0].revents & POLLIN) {
      unsigned char b = 0;
      while (::read(g_signal_pipe[0], &b, 1) == 1) {
        received_signal = b;
        signal_children(b);  // forward as received
        if (!stopping) {
          stopping = true;
          kill_at =
              Clock::now() + std::chrono::milliseconds(static_cast<int64_t>(o.grace_s * 1000));
        }
      }
    }
    size_t k = 1;
    for (auto& s : streams) {
      if (s.fd < 0) continue;
      const pollfd& p = fds[k++];
      if (!(p.revents & (POLLIN | POLLHUP | POLLERR))) continue;
      char buf[65536];
      const ssize_t r = ::read(s.fd, buf, sizeof(buf));
      if (r > 0) {
        s.partial.append(buf, static_cast<size_t>(r));
        flush_lines(s, false);
      } else if (r == 0 || (errno != EINTR && errno != EAGAIN)) {
        flush_lines(s, true);
        ::close(s.fd);
        s.fd = -1;
      }
    }
  }
  for (auto& s : streams) {
    if (s.fd >= 0) ::close(s.fd);
  }
  ::sigaction(SIGINT, &old_int, nullptr);
  ::sigaction(SIGTERM, &old_term, nullptr);
  ::close(g_signal_pipe[0]);
  ::close(g_signal_pipe[1]);
  g_signal_pipe[0] = g_signal_pipe[1] = -1;
  if (result == 0 && received_signal != 0) result = 128 + received_signal;
  return result;
}

}  // namespace coca::dist
