// The fake server: blocking sockets on one thread, OpenSSL for the TLS variant.
#include "storage/registry/fake_http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "storage/registry/digest.h"

namespace berth::registry::testing {

struct FakeHttpServer::Tls {
  SSL_CTX* ctx = nullptr;
  ~Tls() { SSL_CTX_free(ctx); }
};

namespace {

absl::StatusOr<std::unique_ptr<FakeHttpServer::Tls>> MakeTls() {
  auto tls = std::make_unique<FakeHttpServer::Tls>();
  EVP_PKEY* key = EVP_EC_gen("P-256");
  X509* cert = X509_new();
  bool ok = key != nullptr && cert != nullptr;
  if (ok) {
    ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
    X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
    X509_gmtime_adj(X509_getm_notAfter(cert), 86400);
    X509_set_pubkey(cert, key);
    X509_NAME* name = X509_get_subject_name(cert);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>("127.0.0.1"), -1, -1, 0);
    X509_set_issuer_name(cert, name);
    ok = X509_sign(cert, key, EVP_sha256()) > 0;
  }
  if (ok) {
    tls->ctx = SSL_CTX_new(TLS_server_method());
    ok = tls->ctx != nullptr && SSL_CTX_use_certificate(tls->ctx, cert) == 1 &&
         SSL_CTX_use_PrivateKey(tls->ctx, key) == 1;
  }
  X509_free(cert);
  EVP_PKEY_free(key);
  if (!ok) return absl::InternalError("making a self-signed certificate failed");
  return tls;
}

// Reads and writes over the plain socket or its TLS session.
class Conn {
 public:
  Conn(int fd, SSL* ssl) : fd_(fd), ssl_(ssl) {}
  ssize_t Read(char* buf, size_t n) {
    if (ssl_ != nullptr) return SSL_read(ssl_, buf, static_cast<int>(n));
    return recv(fd_, buf, n, 0);
  }
  bool WriteAll(const std::string& data) {
    size_t off = 0;
    while (off < data.size()) {
      ssize_t n = ssl_ != nullptr
                      ? SSL_write(ssl_, data.data() + off, static_cast<int>(data.size() - off))
                      : send(fd_, data.data() + off, data.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return false;
      off += n;
    }
    return true;
  }

 private:
  int fd_;
  SSL* ssl_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<FakeHttpServer>> FakeHttpServer::Start(Handler handler, bool tls) {
  // A client that hangs up mid-answer must cost a failed write, not the test process.
  signal(SIGPIPE, SIG_IGN);
  std::unique_ptr<Tls> t;
  if (tls) {
    auto made = MakeTls();
    if (!made.ok()) return made.status();
    t = std::move(*made);
  }
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError(absl::StrCat("socket: ", strerror(errno)));
  struct sockaddr_in addr = {};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 || listen(fd, 16) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    int err = errno;
    close(fd);
    return absl::InternalError(absl::StrCat("listen on loopback: ", strerror(err)));
  }
  return std::make_unique<FakeHttpServer>(fd, ntohs(addr.sin_port), std::move(handler),
                                          std::move(t));
}

FakeHttpServer::FakeHttpServer(int listen_fd, int port, Handler handler, std::unique_ptr<Tls> tls)
    : listen_fd_(listen_fd), port_(port), handler_(std::move(handler)), tls_(std::move(tls)) {
  thread_ = std::thread([this] { Serve(); });
}

FakeHttpServer::~FakeHttpServer() {
  shutdown(listen_fd_, SHUT_RDWR);  // wakes accept()
  thread_.join();
  close(listen_fd_);
}

std::string FakeHttpServer::host() const { return absl::StrCat("127.0.0.1:", port_); }
std::string FakeHttpServer::base_url() const {
  return absl::StrCat(tls_ ? "https://" : "http://", host());
}

std::vector<FakeRequest> FakeHttpServer::requests() const {
  absl::MutexLock l(&mu_);
  return requests_;
}

void FakeHttpServer::Serve() {
  for (;;) {
    int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      return;
    }
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    ServeOne(fd);
    close(fd);
  }
}

void FakeHttpServer::ServeOne(int fd) {
  SSL* ssl = nullptr;
  if (tls_) {
    ssl = SSL_new(tls_->ctx);
    SSL_set_fd(ssl, fd);
    if (SSL_accept(ssl) != 1) {
      ERR_clear_error();
      SSL_free(ssl);
      return;
    }
  }
  Conn conn(fd, ssl);
  std::string in;
  char buf[16384];
  size_t end;
  while ((end = in.find("\r\n\r\n")) == std::string::npos) {
    ssize_t n = conn.Read(buf, sizeof(buf));
    // Not HTTP (a TLS hello on the plain port): hang up rather than wait for a blank line.
    if (n <= 0 || in.size() > (64 << 10) || !absl::ascii_isupper(in.empty() ? buf[0] : in[0])) {
      in.clear();
      break;
    }
    in.append(buf, n);
  }
  if (!in.empty()) {
    FakeRequest req;
    std::vector<std::string> lines = absl::StrSplit(in.substr(0, end), "\r\n");
    std::vector<std::string> first = absl::StrSplit(lines[0], ' ');
    if (first.size() >= 2) {
      req.method = first[0];
      req.target = first[1];
    }
    for (size_t i = 1; i < lines.size(); ++i) {
      size_t colon = lines[i].find(':');
      if (colon == std::string::npos) continue;
      req.headers[absl::AsciiStrToLower(lines[i].substr(0, colon))] =
          std::string(absl::StripAsciiWhitespace(lines[i].substr(colon + 1)));
    }
    req.body = in.substr(end + 4);
    size_t want = 0;
    if (auto it = req.headers.find("content-length"); it != req.headers.end()) {
      (void)absl::SimpleAtoi(it->second, &want);
    }
    while (req.body.size() < want) {
      ssize_t n = conn.Read(buf, sizeof(buf));
      if (n <= 0) break;
      req.body.append(buf, n);
    }
    {
      absl::MutexLock l(&mu_);
      requests_.push_back(req);
    }
    FakeResponse resp = handler_(req);
    std::string out = absl::StrCat("HTTP/1.1 ", resp.status, " Fake\r\n");
    for (const auto& [k, v] : resp.headers) absl::StrAppend(&out, k, ": ", v, "\r\n");
    absl::StrAppend(&out, "Content-Length: ", resp.body.size(), "\r\nConnection: close\r\n\r\n");
    if (req.method != "HEAD") out += resp.body;
    conn.WriteAll(out);
  }
  if (ssl != nullptr) {
    SSL_shutdown(ssl);
    SSL_free(ssl);
  }
}

std::string StaticRegistry::AddBlob(const std::string& repo, std::string bytes) {
  std::string digest = DigestOf(bytes);
  absl::MutexLock l(&mu_);
  docs_[absl::StrCat("/v2/", repo, "/blobs/", digest)] = {"application/octet-stream",
                                                          std::move(bytes)};
  return digest;
}

std::string StaticRegistry::AddManifest(const std::string& repo, const std::string& tag,
                                        std::string body, std::string media_type) {
  std::string digest = DigestOf(body);
  absl::MutexLock l(&mu_);
  if (!tag.empty()) docs_[absl::StrCat("/v2/", repo, "/manifests/", tag)] = {media_type, body};
  docs_[absl::StrCat("/v2/", repo, "/manifests/", digest)] = {std::move(media_type),
                                                              std::move(body)};
  return digest;
}

FakeResponse StaticRegistry::Answer(const FakeRequest& req) const {
  absl::MutexLock l(&mu_);
  auto it = docs_.find(req.target);
  if (it == docs_.end()) return FakeResponse{404, {}, "{\"errors\":[{\"code\":\"NOT_FOUND\"}]}"};
  return FakeResponse{200, {{"Content-Type", it->second.first}}, it->second.second};
}

}  // namespace berth::registry::testing
