// The streaming server's HTTP side without sockets, so it can be fuzzed: an incremental, bounded
// parser for the upgrade request, the URL routing to a token, and the SPDY protocol negotiation.
#ifndef BERTH_SERVER_STREAMING_HANDSHAKE_H_
#define BERTH_SERVER_STREAMING_HANDSHAKE_H_

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "boost/beast/http.hpp"
#include "server/streaming/request.h"

namespace berth::streaming {

using HttpRequest = boost::beast::http::request<boost::beast::http::string_body>;

// Reads one HTTP/1.1 request from bytes fed as they arrive.
class HandshakeParser {
 public:
  // `max_bytes` bounds the header block and, separately, the body. Chunked bodies are refused:
  // no streaming client sends one, and Beast 1.74's chunk parser asserts on some of them when
  // they arrive in pieces.
  explicit HandshakeParser(size_t max_bytes);

  // True once the request is complete, false while more bytes are needed. Errors:
  // ResourceExhausted for a request over the limit, InvalidArgument for a malformed one.
  absl::StatusOr<bool> Feed(absl::string_view bytes);

  // Once Feed returned true: the request, and the bytes that came behind it (SPDY clients may
  // send frames right after the upgrade request).
  HttpRequest& request() { return parser_.get(); }
  std::string TakeLeftover() { return std::move(pending_); }

 private:
  const size_t max_bytes_;
  boost::beast::http::request_parser<boost::beast::http::string_body> parser_;
  std::string pending_;  // fed but not consumed by the parser
  size_t consumed_ = 0;  // by the parser: header and body
  bool header_checked_ = false;
  bool done_ = false;
};

// "/exec/<token>", "/attach/<token>" or "/portforward/<token>", with any query.
struct Route {
  Request::Kind kind = Request::kExec;
  std::string token;
};
std::optional<Route> RouteTarget(absl::string_view target);

// The values of every header named `name` (any case), split at commas and trimmed.
std::vector<std::string> HeaderValues(const HttpRequest& req, absl::string_view name);

// The SPDY protocol to answer the client's X-Stream-Protocol-Version offers with, in the
// client's order of preference; with no offers, the first protocol of each kind. Empty: none of
// the offers is spoken.
std::string NegotiateSpdy(Request::Kind kind, const std::vector<std::string>& offered);

}  // namespace berth::streaming

#endif  // BERTH_SERVER_STREAMING_HANDSHAKE_H_
