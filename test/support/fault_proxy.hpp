// A one-thread TCP relay on 127.0.0.1 in front of a server (nginx) that injects network
// faults into the responses: a reset (or a clean close) after N bytes, or a trickle below any
// sane speed. It can also re-frame every response as a server without Content-Length would
// send it (close-delimited, or chunked) and drop headers (ETag, Last-Modified).
// Bounded: 16 connections, 100 ms poll ticks, 10 s idle, stops on destruction. Header-only.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <strings.h>
#include <thread>
#include <vector>

namespace osu::test {

// How the proxy frames each response body for the client.
enum class Framing {
  AsIs,            // the bytes nginx sent
  CloseDelimited,  // no Content-Length: the body ends where the connection closes
  Chunked,         // Transfer-Encoding: chunked, one chunk per read from nginx
};

struct FaultProxyOptions {
  // Reset after this many response bytes (body bytes when the response is rewritten).
  size_t cut_after = std::numeric_limits<size_t>::max();
  size_t trickle_after = std::numeric_limits<size_t>::max();  // then send trickle_rate B/s
  size_t trickle_rate = 100;
  bool every_connection = false;  // false: only the first connection is faulty
  std::function<void()> on_cut;   // runs on the proxy thread: no Catch assertions in it
  bool cut_with_fin = false;      // cut with a clean close (FIN) instead of a reset
  // Every connection, one request each: the body framing and response headers to drop.
  Framing framing = Framing::AsIs;
  std::vector<std::string> drop_headers;
};

class FaultProxy {
 public:
  FaultProxy(int upstream_port, FaultProxyOptions options)
      : upstream_port_(upstream_port), options_(std::move(options)) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a = Loopback(0);
    socklen_t len = sizeof a;
    REQUIRE(::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(::listen(listen_fd_, 4) == 0);
    REQUIRE(::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len) == 0);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { Serve(); });
  }
  // Resets the first connection after `cut_after` response bytes.
  FaultProxy(int upstream_port, size_t cut_after, std::function<void()> on_cut = {})
      : FaultProxy(upstream_port, FaultProxyOptions{cut_after, std::numeric_limits<size_t>::max(),
                                                    100, false, std::move(on_cut)}) {}
  ~FaultProxy() {
    stop_ = true;
    thread_.join();
    ::close(listen_fd_);
  }
  FaultProxy(const FaultProxy&) = delete;
  FaultProxy& operator=(const FaultProxy&) = delete;

  int port() const { return port_; }
  std::string Url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }
  int connections() const { return connections_; }

 private:
  static sockaddr_in Loopback(int port) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<uint16_t>(port));
    return a;
  }

  // MSG_NOSIGNAL: a client that gave up must not SIGPIPE the test.
  static bool SendAll(int fd, const char* p, size_t n) {
    while (n > 0) {
      ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
      if (w <= 0) return false;
      p += w;
      n -= static_cast<size_t>(w);
    }
    return true;
  }

  void Serve() {
    while (!stop_ && connections_ < 16) {
      pollfd p{listen_fd_, POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      int client = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (client < 0) continue;
      int upstream = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      sockaddr_in a = Loopback(upstream_port_);
      if (::connect(upstream, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
        bool faulty = ++connections_ == 1 || options_.every_connection;
        if (options_.framing != Framing::AsIs || !options_.drop_headers.empty())
          RelayRewritten(client, upstream, faulty);
        else
          Relay(client, upstream, faulty);
      }
      ::close(upstream);
      ::close(client);
    }
  }

  // Sends [p, p+n) at trickle_rate, 100 ms per slice; false when the client is gone.
  bool Trickle(int client, const char* p, size_t n) {
    const size_t slice = std::max<size_t>(1, options_.trickle_rate / 10);
    while (n > 0 && !stop_) {
      size_t k = std::min(slice, n);
      if (!SendAll(client, p, k)) return false;
      p += k;
      n -= k;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      pollfd c{client, POLLIN, 0};  // the client closed: stop trickling into nothing
      if (::poll(&c, 1, 0) > 0) {
        char probe;
        if (::recv(client, &probe, 1, MSG_PEEK | MSG_DONTWAIT) == 0) return false;
      }
    }
    return !stop_;
  }

  void Relay(int client, int upstream, bool faulty) {
    size_t sent_back = 0;
    char buf[16384];
    auto idle_deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!stop_ && std::chrono::steady_clock::now() < idle_deadline) {
      pollfd p[2] = {{client, POLLIN, 0}, {upstream, POLLIN, 0}};
      if (::poll(p, 2, 100) <= 0) continue;
      idle_deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
      if (p[0].revents) {
        ssize_t n = ::read(client, buf, sizeof buf);
        if (n <= 0 || !SendAll(upstream, buf, static_cast<size_t>(n))) return;
      }
      if (p[1].revents) {
        ssize_t n = ::read(upstream, buf, sizeof buf);
        if (n <= 0) return;
        size_t len = static_cast<size_t>(n);
        if (faulty && sent_back + len >= options_.cut_after) len = options_.cut_after - sent_back;
        size_t fast = len;
        if (faulty && sent_back + len > options_.trickle_after)
          fast = options_.trickle_after > sent_back ? options_.trickle_after - sent_back : 0;
        if (fast > 0 && !SendAll(client, buf, fast)) return;
        if (fast < len && !Trickle(client, buf + fast, len - fast)) return;
        sent_back += len;
        if (faulty && sent_back >= options_.cut_after) return Cut(client);
      }
    }
  }

  void Cut(int client) {
    if (options_.on_cut) options_.on_cut();
    if (options_.cut_with_fin) {
      ::shutdown(client, SHUT_WR);  // a clean end of stream, as if the body were complete
      return;
    }
    linger l{1, 0};  // close with RST: "connection reset by peer" for the client
    ::setsockopt(client, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  }

  // Reads from fd until `data` holds "\r\n\r\n"; false on EOF, error or 10 s of silence.
  bool ReadHead(int fd, std::string& data) {
    char buf[4096];
    while (data.find("\r\n\r\n") == std::string::npos) {
      pollfd p{fd, POLLIN, 0};
      if (stop_ || ::poll(&p, 1, 10000) <= 0) return false;
      ssize_t n = ::read(fd, buf, sizeof buf);
      if (n <= 0) return false;
      data.append(buf, static_cast<size_t>(n));
    }
    return true;
  }

  bool Dropped(const std::string& line) const {
    std::vector<std::string> names = options_.drop_headers;
    if (options_.framing != Framing::AsIs) {
      names.insert(names.end(), {"Content-Length", "Transfer-Encoding"});
    }
    names.push_back("Connection");
    for (const auto& name : names) {
      if (line.size() > name.size() && line[name.size()] == ':' &&
          ::strncasecmp(line.c_str(), name.c_str(), name.size()) == 0)
        return true;
    }
    return false;
  }

  // One request per connection: the request goes up with "Connection: close", the response
  // comes back with its headers and framing rewritten, cut after cut_after body bytes.
  void RelayRewritten(int client, int upstream, bool faulty) {
    std::string request;
    if (!ReadHead(client, request)) return;
    size_t head_end = request.find("\r\n\r\n");
    request.insert(head_end + 2, "Connection: close\r\n");
    if (!SendAll(upstream, request.data(), request.size())) return;

    std::string response;
    if (!ReadHead(upstream, response)) return;
    head_end = response.find("\r\n\r\n");
    std::string body = response.substr(head_end + 4);
    std::string head;
    size_t length = std::numeric_limits<size_t>::max();
    size_t at = 0;
    while (at < head_end + 2) {
      size_t eol = response.find("\r\n", at);
      std::string line = response.substr(at, eol - at);
      at = eol + 2;
      if (::strncasecmp(line.c_str(), "Content-Length:", 15) == 0) length = std::stoul(line.substr(15));
      if (!Dropped(line)) head += line + "\r\n";
    }
    if (options_.framing == Framing::Chunked) head += "Transfer-Encoding: chunked\r\n";
    head += "Connection: close\r\n\r\n";
    if (!SendAll(client, head.data(), head.size())) return;

    size_t sent = 0, got = body.size();
    char buf[16384];
    for (;;) {
      if (!body.empty()) {
        size_t len = body.size();
        if (options_.framing == Framing::Chunked) {
          char size_line[32];
          int k = std::snprintf(size_line, sizeof size_line, "%zx\r\n", len);
          if (!SendAll(client, size_line, static_cast<size_t>(k))) return;
        }
        if (faulty && sent + len >= options_.cut_after) len = options_.cut_after - sent;
        if (!SendAll(client, body.data(), len)) return;
        sent += len;
        if (faulty && sent >= options_.cut_after) return Cut(client);
        if (options_.framing == Framing::Chunked && !SendAll(client, "\r\n", 2)) return;
        body.clear();
      }
      if (got >= length) break;
      pollfd p{upstream, POLLIN, 0};
      if (stop_ || ::poll(&p, 1, 10000) <= 0) return;
      ssize_t n = ::read(upstream, buf, sizeof buf);
      if (n <= 0) break;
      body.assign(buf, static_cast<size_t>(n));
      got += body.size();
    }
    if (options_.framing == Framing::Chunked) SendAll(client, "0\r\n\r\n", 5);
    ::shutdown(client, SHUT_WR);
  }

  int upstream_port_;
  FaultProxyOptions options_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> connections_{0};
  std::thread thread_;
};

}  // namespace osu::test
