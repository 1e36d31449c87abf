// Upgrade request parsing, routing and SPDY negotiation for the streaming server.
#include "server/streaming/handshake.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace berth::streaming {
namespace {

namespace http = boost::beast::http;

constexpr const char* kRemoteCommandProtocols[] = {"v4.channel.k8s.io", "v3.channel.k8s.io",
                                                   "v2.channel.k8s.io", "channel.k8s.io"};
constexpr const char* kPortForwardProtocol = "portforward.k8s.io";

}  // namespace

HandshakeParser::HandshakeParser(size_t max_bytes) : max_bytes_(max_bytes) {
  parser_.header_limit(static_cast<std::uint32_t>(std::min<size_t>(max_bytes, UINT32_MAX)));
  parser_.body_limit(max_bytes);
  // Stop after the header, so it can be checked before any body is parsed.
  parser_.eager(false);
}

absl::StatusOr<bool> HandshakeParser::Feed(absl::string_view bytes) {
  pending_.append(bytes.data(), bytes.size());
  if (done_) return true;
  for (;;) {
    boost::system::error_code ec;
    size_t used = parser_.put(boost::asio::buffer(pending_.data(), pending_.size()), ec);
    pending_.erase(0, used);
    consumed_ += used;
    if (consumed_ > 2 * max_bytes_) {
      return absl::ResourceExhaustedError(
          absl::StrCat("streaming request exceeds ", 2 * max_bytes_, " bytes"));  // header + body
    }
    if (parser_.is_done()) {
      done_ = true;
      return true;
    }
    if (!ec && parser_.is_header_done() && !header_checked_) {
      header_checked_ = true;
      if (parser_.chunked()) {
        return absl::InvalidArgumentError("streaming request: a chunked body is not accepted");
      }
      parser_.eager(true);
      continue;
    }
    if (ec == http::error::need_more || (!ec && used == 0)) {
      // Beast bounds the header it is waiting for; this bounds what a body in progress leaves.
      if (pending_.size() > max_bytes_) {
        return absl::ResourceExhaustedError(
            absl::StrCat("streaming request exceeds ", max_bytes_, " bytes"));
      }
      return false;
    }
    if (ec == http::error::header_limit || ec == http::error::body_limit) {
      return absl::ResourceExhaustedError(
          absl::StrCat("streaming request exceeds ", max_bytes_, " bytes"));
    }
    if (ec) return absl::InvalidArgumentError(absl::StrCat("streaming request: ", ec.message()));
  }
}

std::optional<Route> RouteTarget(absl::string_view target) {
  std::vector<absl::string_view> parts =
      absl::StrSplit(target.substr(0, target.find('?')), '/', absl::SkipEmpty());
  if (parts.size() != 2) return std::nullopt;
  Route route;
  if (parts[0] == "exec") {
    route.kind = Request::kExec;
  } else if (parts[0] == "attach") {
    route.kind = Request::kAttach;
  } else if (parts[0] == "portforward") {
    route.kind = Request::kPortForward;
  } else {
    return std::nullopt;
  }
  route.token = std::string(parts[1]);
  return route;
}

std::vector<std::string> HeaderValues(const HttpRequest& req, absl::string_view name) {
  std::vector<std::string> out;
  for (const auto& f : req) {
    if (!absl::EqualsIgnoreCase(absl::string_view(f.name_string().data(), f.name_string().size()),
                                name)) {
      continue;
    }
    for (absl::string_view v : absl::StrSplit(absl::string_view(f.value().data(), f.value().size()),
                                              ',', absl::SkipEmpty())) {
      v = absl::StripAsciiWhitespace(v);
      if (!v.empty()) out.emplace_back(v);
    }
  }
  return out;
}

std::string NegotiateSpdy(Request::Kind kind, const std::vector<std::string>& offered) {
  // Clients from before negotiation: the first protocol of each kind.
  if (offered.empty())
    return kind == Request::kPortForward ? kPortForwardProtocol : "channel.k8s.io";
  for (const std::string& o : offered) {
    if (kind == Request::kPortForward) {
      if (o == kPortForwardProtocol) return o;
      continue;
    }
    for (const char* p : kRemoteCommandProtocols) {
      if (o == p) return p;
    }
  }
  return "";
}

}  // namespace berth::streaming
