// SpdyClient: the client half of SPDY/3.1 as client-go's spdy round tripper speaks it.
#include "test/streaming/spdy_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace berth::test {

namespace spdy = streaming::spdy;

absl::StatusOr<UniqueFd> ConnectToUrl(const std::string& url, std::string* path) {
  if (!absl::StartsWith(url, "http://")) return absl::InvalidArgumentError(url);
  std::string rest = url.substr(strlen("http://"));
  size_t slash = rest.find('/');
  std::string hostport = rest.substr(0, slash);
  *path = slash == std::string::npos ? "/" : rest.substr(slash);
  size_t colon = hostport.rfind(':');
  int port = 0;
  if (colon == std::string::npos || !absl::SimpleAtoi(hostport.substr(colon + 1), &port)) {
    return absl::InvalidArgumentError(url);
  }
  UniqueFd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  if (inet_pton(AF_INET, hostport.substr(0, colon).c_str(), &a.sin_addr) != 1) {
    return absl::InvalidArgumentError(url);
  }
  if (connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    return absl::UnavailableError(absl::StrCat("connect ", url, ": ", strerror(errno)));
  }
  return fd;
}

absl::StatusOr<int> SpdyClient::Connect(const std::string& url, const std::string& protocols) {
  std::string path;
  absl::StatusOr<UniqueFd> fd = ConnectToUrl(url, &path);
  if (!fd.ok()) return fd.status();
  fd_ = std::move(*fd);
  std::string req = absl::StrCat("POST ", path, " HTTP/1.1\r\nHost: localhost\r\n",
                                 "Connection: Upgrade\r\nUpgrade: SPDY/3.1\r\n");
  if (!protocols.empty()) absl::StrAppend(&req, "X-Stream-Protocol-Version: ", protocols, "\r\n");
  absl::StrAppend(&req, "Content-Length: 0\r\n\r\n");
  if (write(fd_.get(), req.data(), req.size()) != static_cast<ssize_t>(req.size())) {
    return absl::UnavailableError("write upgrade request");
  }
  while (buf_.find("\r\n\r\n") == std::string::npos) {
    if (!Fill(absl::Seconds(30))) return absl::UnavailableError("no upgrade response");
  }
  head_ = buf_.substr(0, buf_.find("\r\n\r\n"));
  buf_.erase(0, head_.size() + 4);
  std::vector<std::string> words = absl::StrSplit(head_, ' ');
  int code = 0;
  if (words.size() < 2 || !absl::SimpleAtoi(words[1], &code)) {
    return absl::InternalError(absl::StrCat("bad status line: ", head_));
  }
  return code;
}

std::string SpdyClient::ReadBody() {
  while (Fill(absl::Seconds(30))) {
  }
  return buf_;
}

bool SpdyClient::Fill(absl::Duration timeout) {
  if (eof_) return false;
  pollfd p{fd_.get(), POLLIN, 0};
  // A deadline already past polls once rather than (negative) forever.
  int r = poll(&p, 1, static_cast<int>(std::max<int64_t>(0, absl::ToInt64Milliseconds(timeout))));
  if (r <= 0) return false;
  char tmp[65536];
  ssize_t n = read(fd_.get(), tmp, sizeof(tmp));
  if (n <= 0) {
    eof_ = true;
    return false;
  }
  buf_.append(tmp, n);
  return true;
}

bool SpdyClient::ReadFrame(absl::Duration timeout) {
  for (;;) {
    spdy::Frame f;
    absl::StatusOr<size_t> used = spdy::ParseFrame(buf_.data(), buf_.size(), &f);
    if (!used.ok()) return false;
    if (*used == 0) {
      if (!Fill(timeout)) return false;
      continue;
    }
    buf_.erase(0, *used);
    if (!f.control) {
      StreamData& s = streams_[f.stream_id];
      s.bytes += f.payload;
      if (f.flags & spdy::kFlagFin) s.fin = true;
      return true;
    }
    if (f.type == spdy::kSynReply) {
      absl::StatusOr<uint32_t> id = spdy::ParseStreamIdPrefix(f);
      if (!id.ok()) return false;
      if (!inflate_.Decompress(f.payload.substr(4)).ok()) return false;
      replied_.insert(*id);
      if (f.flags & spdy::kFlagFin) streams_[*id].fin = true;
    } else if (f.type == spdy::kRstStream) {
      absl::StatusOr<uint32_t> id = spdy::ParseStreamIdPrefix(f);
      if (id.ok()) {
        streams_[*id].fin = true;
        reset_.insert(*id);
      }
    } else if (f.type == spdy::kGoAway) {
      goaway_ = true;
    } else if (f.type == spdy::kPing) {
      if (absl::StatusOr<uint32_t> id = spdy::ParsePingId(f); id.ok()) pongs_.insert(*id);
    }
    return true;
  }
}

bool SpdyClient::Ping(absl::Duration timeout) {
  const uint32_t id = next_ping_;
  next_ping_ += 2;
  if (!SendRaw(spdy::PingFrame(id))) return false;
  const absl::Time deadline = absl::Now() + timeout;
  while (!pongs_.contains(id)) {
    if (absl::Now() >= deadline || !ReadFrame(deadline - absl::Now())) return false;
  }
  return true;
}

absl::StatusOr<uint32_t> SpdyClient::Open(const spdy::Headers& headers) {
  uint32_t id = next_id_;
  next_id_ += 2;
  absl::StatusOr<std::string> block = deflate_.Compress(headers);
  if (!block.ok()) return block.status();
  std::string frame = spdy::SynStreamFrame(id, 0, 0, *block);
  if (write(fd_.get(), frame.data(), frame.size()) != static_cast<ssize_t>(frame.size())) {
    return absl::UnavailableError("write SYN_STREAM");
  }
  while (!replied_.contains(id)) {
    if (!ReadFrame(absl::Seconds(30))) return absl::UnavailableError("no SYN_REPLY");
  }
  return id;
}

absl::StatusOr<std::string> SpdyClient::SynStream(const spdy::Headers& headers, uint32_t* id) {
  *id = next_id_;
  next_id_ += 2;
  absl::StatusOr<std::string> block = deflate_.Compress(headers);
  if (!block.ok()) return block.status();
  return spdy::SynStreamFrame(*id, 0, 0, *block);
}

bool SpdyClient::SendRaw(const std::string& bytes) {
  const char* p = bytes.data();
  size_t n = bytes.size();
  while (n > 0) {
    ssize_t w = send(fd_.get(), p, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= w;
  }
  return true;
}

bool SpdyClient::ReadAvailable() {
  while (ReadFrame(absl::ZeroDuration())) {
  }
  return !eof_;
}

bool SpdyClient::ReadUntilClosed(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!eof_) {
    if (!ReadFrame(deadline - absl::Now())) return eof_;
  }
  return true;
}

bool SpdyClient::Send(uint32_t id, const std::string& data, bool fin) {
  std::string frame = spdy::DataFrame(id, fin ? spdy::kFlagFin : 0, data.data(), data.size());
  const char* p = frame.data();
  size_t n = frame.size();
  while (n > 0) {
    ssize_t w = write(fd_.get(), p, n);
    if (w <= 0) return false;
    p += w;
    n -= w;
  }
  return true;
}

bool SpdyClient::ReadUntilFin(const std::set<uint32_t>& ids, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  for (;;) {
    bool all = true;
    for (uint32_t id : ids) all = all && streams_[id].fin;
    if (all) return true;
    if (eof_ && buf_.empty()) return true;  // the connection closed: every stream ended
    if (!ReadFrame(deadline - absl::Now())) return eof_;
  }
}

bool SpdyClient::ReadUntilBytes(uint32_t id, size_t n, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (streams_[id].bytes.size() < n) {
    if (!ReadFrame(deadline - absl::Now())) return false;
  }
  return true;
}

bool SpdyClient::ReadUntilContains(uint32_t id, const std::string& needle, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!absl::StrContains(streams_[id].bytes, needle)) {
    if (!ReadFrame(deadline - absl::Now())) return false;
  }
  return true;
}

}  // namespace berth::test
