// JSON text that never throws: strings from images and clients need not be UTF-8.
#ifndef BERTH_UTIL_JSON_H_
#define BERTH_UTIL_JSON_H_

#include <string>

#include "nlohmann/json.hpp"

namespace berth {

// nlohmann's dump() throws on a string that is not UTF-8 (a home directory in an image's
// /etc/passwd, a client's command); such bytes become U+FFFD instead.
inline std::string DumpJson(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace berth

#endif  // BERTH_UTIL_JSON_H_
