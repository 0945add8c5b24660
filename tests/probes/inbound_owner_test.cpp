// Who an inbound connection belongs to: the process that called listen() on the socket that
// accepted it, as `ss -p` shows the server, never the client whose softirq happened to complete
// the handshake (on loopback the client's connect() runs it). Ground truth: the servers are
// processes this test forks, so their pids and names are known, and each reports the client
// ports it accepted, which says which listener the kernel chose for each connection.
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include <cstring>
#include <map>
#include <set>
#include <string>

#include "tests/support/harness.h"

namespace nwtest {
namespace {

class InboundOwnerTest : public KernelTest {};

// A server process forked from the test, in its own process group (its workers too); killed
// and reaped on destruction, so a failed assertion never leaves it running. The child runs only
// system calls: the test process has threads, and after fork() only async-signal-safe calls are.
class ForkedServer {
 public:
  // `body` runs in the child with the write end of a pipe to report on; the child _exit()s
  // when it returns.
  template <class Body>
  explicit ForkedServer(Body body) {
    int fds[2];
    if (pipe(fds) != 0) throw std::runtime_error("pipe");
    pid_ = fork();
    if (pid_ < 0) throw std::runtime_error("fork");
    if (pid_ == 0) {
      setpgid(0, 0);
      close(fds[0]);
      body(fds[1]);
      _exit(0);
    }
    setpgid(pid_, pid_);  // both sides: whichever runs first
    close(fds[1]);
    report_ = Fd(fds[0]);
  }
  ~ForkedServer() {
    kill(-pid_, SIGKILL);
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  pid_t pid() const { return pid_; }
  // Reads exactly `size` bytes of the child's report; false after the timeout.
  bool read_report(void* data, size_t size, std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    char* p = static_cast<char*>(data);
    while (size > 0) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      pollfd pfd{report_.get(), POLLIN, 0};
      if (left.count() <= 0 || poll(&pfd, 1, int(left.count())) <= 0) return false;
      ssize_t n = read(report_.get(), p, size);
      if (n <= 0) return false;
      p += n;
      size -= size_t(n);
    }
    return true;
  }

 private:
  pid_t pid_ = -1;
  Fd report_;
};

// In the child: a listening socket on 127.0.0.1:port (SO_REUSEPORT if asked), or -1.
int child_listen(const sockaddr_in& addr, bool reuseport) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0) return -1;
  if (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0) return -1;
  if (bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0 || listen(fd, 64) != 0) return -1;
  return fd;
}

// In the child: accepts forever; reports each accepted connection's client port (2 bytes, host
// order) on `report` if it is not -1, then drains the connection until the client closes.
[[noreturn]] void child_serve(int listen_fd, int report) {
  for (;;) {
    sockaddr_in peer{};
    socklen_t len = sizeof(peer);
    int conn = accept(listen_fd, reinterpret_cast<sockaddr*>(&peer), &len);
    if (conn < 0) continue;
    uint16_t port = ntohs(peer.sin_port);
    if (report >= 0 && write(report, &port, sizeof(port)) != sizeof(port)) _exit(1);
    char buf[256];
    while (recv(conn, buf, sizeof(buf), 0) > 0) {
    }
    close(conn);
  }
}

sockaddr_in loopback4(uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

// Connects `n` times from this process (the client) and closes each; returns the client ports.
std::set<uint16_t> connect_many(uint16_t port, int n) {
  std::set<uint16_t> ports;
  for (int i = 0; i < n; ++i) {
    Fd c = connect_to(AF_INET, port);
    ports.insert(local_port(c.get()));
  }
  return ports;
}

TEST_P(InboundOwnerTest, prefork_server_connections_belong_to_the_process_that_listened) {
  ASSERT_NO_FATAL_FAILURE(start_tracing());
  constexpr int kConnections = 6;
  const uint16_t server_port = port(64800);
  const sockaddr_in addr = loopback4(server_port);
  // The parent listens, then forks two workers that accept; it only waits.
  ForkedServer server([&](int report) {
    prctl(PR_SET_NAME, "nw-listener");
    int l = child_listen(addr, false);
    if (l < 0) _exit(1);
    for (int w = 0; w < 2; ++w) {
      if (fork() == 0) {
        prctl(PR_SET_NAME, "nw-worker");
        child_serve(l, -1);
      }
    }
    char ready = 1;
    if (write(report, &ready, 1) != 1) _exit(1);
    for (;;) pause();
  });
  char ready = 0;
  ASSERT_TRUE(server.read_report(&ready, 1, 5s)) << "the pre-forking server did not start";

  const std::set<uint16_t> clients = connect_many(server_port, kConnections);
  auto is_accept = [&](const Event& e) { return e.type == EventType::accept && e.sport == server_port; };
  events_->wait_for(is_accept, kConnections);
  events_->settle();
  std::vector<Event> accepted = events_->matching(is_accept);
  ASSERT_EQ(accepted.size(), size_t(kConnections));
  for (const Event& e : accepted) {
    EXPECT_TRUE(clients.count(e.dport)) << "an accept of a client we did not make: " << e.dport;
    EXPECT_EQ(e.pid, uint32_t(server.pid())) << "the listener's owner, not the client (" << getpid()
                                             << ") nor a worker";
    EXPECT_EQ(e.comm_view(), "nw-listener");
  }
  // The connection's later events carry the owner too.
  std::vector<Event> closes = events_->wait_for(
      [&](const Event& e) { return e.type == EventType::close && e.sport == server_port; }, kConnections);
  for (const Event& e : closes) EXPECT_EQ(e.pid, uint32_t(server.pid()));
}

TEST_P(InboundOwnerTest, reuseport_pair_each_connection_belongs_to_its_own_listener) {
  ASSERT_NO_FATAL_FAILURE(start_tracing());
  constexpr int kConnections = 16;  // both listeners get some: all on one side has p = 2^-15
  const uint16_t server_port = port(64900);
  const sockaddr_in addr = loopback4(server_port);
  auto serve_as = [&](const char* name) {
    return [&addr, name](int report) {
      prctl(PR_SET_NAME, name);
      int l = child_listen(addr, true);
      if (l < 0) _exit(1);
      uint16_t ready = 0;
      if (write(report, &ready, sizeof(ready)) != sizeof(ready)) _exit(1);
      child_serve(l, report);
    };
  };
  ForkedServer a(serve_as("nw-reuse-a"));
  uint16_t ready = 1;
  ASSERT_TRUE(a.read_report(&ready, sizeof(ready), 5s)) << "listener a did not start";
  ForkedServer b(serve_as("nw-reuse-b"));
  ASSERT_TRUE(b.read_report(&ready, sizeof(ready), 5s)) << "listener b did not start";

  const std::set<uint16_t> clients = connect_many(server_port, kConnections);
  // Which listener took each client: the processes' own reports, until all are accounted for.
  std::map<uint16_t, std::pair<pid_t, std::string>> owner_of;  // client port -> (pid, comm)
  auto deadline = std::chrono::steady_clock::now() + 5s;
  while (owner_of.size() < clients.size() && std::chrono::steady_clock::now() < deadline) {
    uint16_t p;
    if (a.read_report(&p, sizeof(p), 20ms)) owner_of[p] = {a.pid(), "nw-reuse-a"};
    if (b.read_report(&p, sizeof(p), 20ms)) owner_of[p] = {b.pid(), "nw-reuse-b"};
  }
  ASSERT_EQ(owner_of.size(), clients.size()) << "not every connection was accepted";
  std::set<pid_t> owners;
  for (const auto& [port, owner] : owner_of) owners.insert(owner.first);
  ASSERT_EQ(owners.size(), 2u) << "the kernel gave every connection to one listener: nothing to tell apart";

  auto is_accept = [&](const Event& e) { return e.type == EventType::accept && e.sport == server_port; };
  events_->wait_for(is_accept, kConnections);
  events_->settle();
  std::vector<Event> accepted = events_->matching(is_accept);
  ASSERT_EQ(accepted.size(), size_t(kConnections));
  for (const Event& e : accepted) {
    ASSERT_TRUE(owner_of.count(e.dport)) << "an accept of a client we did not make: " << e.dport;
    EXPECT_EQ(e.pid, uint32_t(owner_of[e.dport].first)) << "client port " << e.dport;
    EXPECT_EQ(e.comm_view(), owner_of[e.dport].second) << "client port " << e.dport;
  }
}

NW_ALL_COMBOS(InboundOwnerTest);

}  // namespace
}  // namespace nwtest
