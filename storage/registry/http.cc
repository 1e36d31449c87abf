// libcurl behind HttpClient: a share handle (connections, DNS, TLS sessions) plus a pool of easy
// handles, so parallel layer downloads from one registry reuse their connections.
#include "storage/registry/http.h"

#include <curl/curl.h>

#include <mutex>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"

namespace berth::registry {
namespace {

std::once_flag g_curl_init;

struct Transfer {
  CURL* curl = nullptr;
  const BodySink* sink = nullptr;
  size_t max_body = 0;
  HttpResponse* response = nullptr;
  bool sink_aborted = false;
  bool too_big = false;
};

size_t OnHeader(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  absl::string_view line(data, size * n);
  if (absl::StartsWith(line, "HTTP/")) {
    t->response->headers.clear();  // a new response (after a redirect or 100-continue)
  } else if (size_t colon = line.find(':'); colon != absl::string_view::npos) {
    t->response->headers[absl::AsciiStrToLower(line.substr(0, colon))] =
        std::string(absl::StripAsciiWhitespace(line.substr(colon + 1)));
  }
  return size * n;
}

size_t OnBody(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  size_t len = size * n;
  long code = 0;
  curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &code);
  if (t->sink != nullptr && *t->sink && code >= 200 && code < 300) {
    if (!(*t->sink)(absl::string_view(data, len))) {
      t->sink_aborted = true;
      return 0;
    }
    return len;
  }
  if (t->response->body.size() + len > t->max_body) {
    t->too_big = true;
    return 0;
  }
  t->response->body.append(data, len);
  return len;
}

}  // namespace

struct HttpClient::Pool {
  CURLSH* share = nullptr;
  std::mutex locks[CURL_LOCK_DATA_LAST];
  absl::Mutex mu;
  std::vector<CURL*> idle ABSL_GUARDED_BY(mu);

  static void Lock(CURL*, curl_lock_data data, curl_lock_access, void* user) {
    static_cast<Pool*>(user)->locks[data].lock();
  }
  static void Unlock(CURL*, curl_lock_data data, void* user) {
    static_cast<Pool*>(user)->locks[data].unlock();
  }

  Pool() {
    share = curl_share_init();
    curl_share_setopt(share, CURLSHOPT_LOCKFUNC, &Pool::Lock);
    curl_share_setopt(share, CURLSHOPT_UNLOCKFUNC, &Pool::Unlock);
    curl_share_setopt(share, CURLSHOPT_USERDATA, this);
    curl_share_setopt(share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    curl_share_setopt(share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
    curl_share_setopt(share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);
  }
  ~Pool() {
    absl::MutexLock l(&mu);
    for (CURL* c : idle) curl_easy_cleanup(c);
    idle.clear();
    curl_share_cleanup(share);
  }
  CURL* Take() {
    {
      absl::MutexLock l(&mu);
      if (!idle.empty()) {
        CURL* c = idle.back();
        idle.pop_back();
        return c;
      }
    }
    return curl_easy_init();
  }
  void Give(CURL* c) {
    absl::MutexLock l(&mu);
    if (idle.size() < 16) {
      idle.push_back(c);
    } else {
      curl_easy_cleanup(c);
    }
  }
};

HttpClient::HttpClient(absl::Duration stall_timeout, absl::Duration connect_timeout)
    : stall_timeout_(stall_timeout), connect_timeout_(connect_timeout) {
  std::call_once(g_curl_init, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  pool_ = std::make_unique<Pool>();
}

HttpClient::~HttpClient() = default;

absl::StatusOr<HttpResponse> HttpClient::Do(const HttpRequest& req, const BodySink& sink,
                                            size_t max_body) {
  CURL* curl = pool_->Take();
  if (curl == nullptr) return absl::ResourceExhaustedError("curl_easy_init failed");
  curl_easy_reset(curl);
  HttpResponse resp;
  Transfer t{curl, &sink, max_body, &resp};
  struct curl_slist* headers = nullptr;
  for (const std::string& h : req.headers) headers = curl_slist_append(headers, h.c_str());
  char errbuf[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(curl, CURLOPT_SHARE, pool_->share);
  curl_easy_setopt(curl, CURLOPT_URL, req.url.c_str());
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
  // A redirect never downgrades: what started over TLS stays on TLS (an insecure registry's
  // plain-HTTP redirects may go to HTTPS).
  curl_easy_setopt(curl, CURLOPT_REDIR_PROTOCOLS_STR,
                   absl::StartsWithIgnoreCase(req.url, "https://") ? "https" : "http,https");
  curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(curl, CURLOPT_MAXREDIRS, 10L);
  // Custom Authorization headers are not sent on to another host after a redirect (curl's
  // default without CURLOPT_UNRESTRICTED_AUTH), so blob redirects to storage stay unauthenticated.
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(absl::ToInt64Milliseconds(connect_timeout_)));
  // Stall detection instead of a total deadline: big layers on slow links still finish.
  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME,
                   std::max<long>(1, absl::ToInt64Seconds(stall_timeout_)));
  curl_easy_setopt(curl, CURLOPT_USERAGENT, "berth/0.1");
  curl_easy_setopt(curl, CURLOPT_ACCEPT_ENCODING, "");
  if (req.skip_tls_verify) {
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 0L);
  }
  if (req.method == "HEAD") {
    curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
  } else if (req.method == "POST") {
    curl_easy_setopt(curl, CURLOPT_POST, 1L);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, req.body.data());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(req.body.size()));
  } else if (req.method != "GET") {
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, req.method.c_str());
    if (!req.body.empty() || req.method == "PUT") {
      curl_easy_setopt(curl, CURLOPT_POSTFIELDS, req.body.data());
      curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(req.body.size()));
    }
  }
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, &OnHeader);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &t);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &OnBody);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &t);

  CURLcode rc = curl_easy_perform(curl);
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &resp.status);
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, nullptr);
  curl_slist_free_all(headers);
  pool_->Give(curl);

  // Only the method and URL appear in errors: credentials travel in headers, never in URLs.
  std::string what = absl::StrCat(req.method, " ", req.url);
  if (t.sink_aborted) return absl::AbortedError(absl::StrCat(what, ": transfer aborted"));
  if (t.too_big) {
    return absl::ResourceExhaustedError(
        absl::StrCat(what, ": response larger than ", max_body, " bytes"));
  }
  if (rc == CURLE_OPERATION_TIMEDOUT) {
    return absl::DeadlineExceededError(absl::StrCat(
        what, ": no progress for ", absl::FormatDuration(stall_timeout_), " (", errbuf, ")"));
  }
  if (rc != CURLE_OK) {
    return absl::UnavailableError(
        absl::StrCat(what, ": ", errbuf[0] ? errbuf : curl_easy_strerror(rc)));
  }
  return resp;
}

std::string UrlHost(absl::string_view url) {
  // curl's own parser, so the host judged here is the host curl connects to (userinfo, "\\" and
  // "@" tricks included).
  CURLU* u = curl_url();
  if (u == nullptr) return "";
  std::string s(url);
  std::string out;
  if (curl_url_set(u, CURLUPART_URL, s.c_str(), CURLU_DEFAULT_SCHEME | CURLU_NON_SUPPORT_SCHEME) ==
      CURLUE_OK) {
    char* host = nullptr;
    char* port = nullptr;
    if (curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK) {
      out = absl::AsciiStrToLower(host);
      if (curl_url_get(u, CURLUPART_PORT, &port, 0) == CURLUE_OK) absl::StrAppend(&out, ":", port);
    }
    curl_free(host);
    curl_free(port);
  }
  curl_url_cleanup(u);
  return out;
}

}  // namespace berth::registry
