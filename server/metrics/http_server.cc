// One I/O thread running asynchronous accepts and connections: a scrape never waits behind a
// client that connected and went quiet, and every connection has a deadline, so shutting the
// server down never hangs on one.
#include "server/metrics/http_server.h"

#include <atomic>
#include <chrono>
#include <memory>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "boost/asio.hpp"
#include "boost/beast.hpp"

namespace berth::metrics {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

// Long enough for any scraper on a loaded node, short enough that idle connections are reaped.
constexpr std::chrono::seconds kConnectionDeadline(30);

// Answers requests on one connection until the client closes it, stops keeping it alive, or
// misses the deadline.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(tcp::socket sock, const Registry* registry)
      : stream_(std::move(sock)), registry_(registry) {}

  void Read() {
    req_ = {};
    stream_.expires_after(kConnectionDeadline);
    http::async_read(stream_, buf_, req_,
                     [self = shared_from_this()](beast::error_code ec, size_t) {
                       if (!ec) self->Respond();
                     });
  }

 private:
  void Respond() {
    res_ = {};
    res_.version(req_.version());
    res_.keep_alive(req_.keep_alive());
    std::string_view target(req_.target().data(), req_.target().size());
    target = target.substr(0, target.find('?'));  // scrapers may add parameters; none matter
    if (target != "/metrics") {
      res_.result(http::status::not_found);
      res_.set(http::field::content_type, "text/plain; charset=utf-8");
      res_.body() = "not found: berth serves only /metrics\n";
    } else if (req_.method() != http::verb::get && req_.method() != http::verb::head) {
      res_.result(http::status::method_not_allowed);
      res_.set(http::field::allow, "GET, HEAD");
    } else {
      res_.result(http::status::ok);
      res_.set(http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
      if (req_.method() == http::verb::get) res_.body() = registry_->Render();
    }
    res_.prepare_payload();
    if (req_.method() == http::verb::head) res_.body().clear();  // length stays that of a GET
    http::async_write(stream_, res_, [self = shared_from_this()](beast::error_code ec, size_t) {
      if (ec) return;
      if (self->res_.keep_alive()) {
        self->Read();
      } else {
        beast::error_code ignored;
        self->stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
      }
    });
  }

  beast::tcp_stream stream_;
  const Registry* registry_;
  beast::flat_buffer buf_;
  http::request<http::string_body> req_;
  http::response<http::string_body> res_;
};

}  // namespace

struct HttpServer::Impl {
  const Registry* registry = nullptr;
  asio::io_context io{1};
  tcp::acceptor acceptor{io};
  std::thread thread;

  void Accept() {
    acceptor.async_accept([this](beast::error_code ec, tcp::socket sock) {
      if (ec == asio::error::operation_aborted || !acceptor.is_open()) return;
      // Other accept errors (EMFILE, ECONNABORTED) concern one client: keep serving.
      if (!ec) std::make_shared<Connection>(std::move(sock), registry)->Read();
      Accept();
    });
  }
};

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {
  impl_->Accept();
  impl_->thread = std::thread([impl = impl_.get()] { impl->io.run(); });
}

HttpServer::~HttpServer() {
  // Stops the loop wherever it is; pending connections are closed when io_context is destroyed.
  impl_->io.stop();
  impl_->thread.join();
}

int HttpServer::port() const { return impl_->acceptor.local_endpoint().port(); }

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(const std::string& address,
                                                              const Registry* registry) {
  size_t colon = address.rfind(':');
  int port = 0;
  if (colon == std::string::npos || !absl::SimpleAtoi(address.substr(colon + 1), &port) ||
      port < 0 || port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("metrics.address \"", address, "\" is not host:port"));
  }
  std::string host = address.substr(0, colon);
  // "[::1]:9464": the brackets only separate an IPv6 address from the port.
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  auto impl = std::make_unique<Impl>();
  impl->registry = registry;
  boost::system::error_code ec;
  auto ip = asio::ip::make_address(host, ec);
  if (ec)
    return absl::InvalidArgumentError(
        absl::StrCat("metrics.address \"", address, "\": ", ec.message()));
  tcp::endpoint ep(ip, static_cast<uint16_t>(port));
  impl->acceptor.open(ep.protocol(), ec);
  if (!ec) impl->acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) impl->acceptor.bind(ep, ec);
  if (!ec) impl->acceptor.listen(64, ec);
  if (ec) return absl::UnavailableError(absl::StrCat("metrics on ", address, ": ", ec.message()));
  return std::make_unique<HttpServer>(std::move(impl));
}

}  // namespace berth::metrics
