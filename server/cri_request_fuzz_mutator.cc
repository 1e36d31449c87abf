// The request-aware half of //server:cri_request_fuzz's custom mutator (LLVMFuzzerCustomMutator):
// one field of a parsed request gets a value of the kind validation must get right.
#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "glog/logging.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"
#include "google/protobuf/stubs/logging.h"
#include "grpcpp/server_context.h"
#include "proto/runtime/v1/api.grpc.pb.h"
#include "runtime/stats/collector.h"
#include "runtime/testing/engine_fakes.h"
#include "server/config.h"
#include "server/cri_request_fuzz.h"
#include "server/cri_request_fuzz_host.h"
#include "server/image_service.h"
#include "server/runtime_service.h"
#include "server/streaming/server.h"
#include "storage/images/image_store.h"
#include "util/fs.h"

namespace berth::server::fuzz {
namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

// ---------------------------------------------------------------------------------------------
// The mutator. Byte mutations seldom keep a protobuf's length prefixes right, so half the time
// the input is mutated as the request it is: one field of it gets a value of the kind validation
// has to get right (path pieces, ids, long or odd strings, boundary numbers), or a flipped bool,
// another enum value, another method or other faults.

// Every field of the request and its set submessages, each with the message that holds it.
void CollectFields(Message* m, std::vector<std::pair<Message*, const FieldDescriptor*>>* out,
                   int depth = 0) {
  if (depth > 16) return;
  const google::protobuf::Descriptor* d = m->GetDescriptor();
  const Reflection* r = m->GetReflection();
  for (int i = 0; i < d->field_count(); ++i) {
    const FieldDescriptor* f = d->field(i);
    if (f->is_map()) continue;
    out->emplace_back(m, f);
    if (f->type() != FieldDescriptor::TYPE_MESSAGE) continue;
    if (f->is_repeated()) {
      for (int j = 0; j < r->FieldSize(*m, f); ++j) {
        CollectFields(r->MutableRepeatedMessage(m, f, j), out, depth + 1);
      }
    } else if (r->HasField(*m, f)) {
      CollectFields(r->MutableMessage(m, f), out, depth + 1);
    }
  }
}

std::string MutateString(std::string v, std::minstd_rand& rng) {
  static const std::string kPieces[] = {".",
                                        "..",
                                        "/",
                                        "./",
                                        "../",
                                        "/..",
                                        "a/..",
                                        "//",
                                        "$POD",
                                        "$CTR",
                                        "",
                                        " ",
                                        "\t",
                                        std::string("\0", 1),
                                        "é",
                                        "/etc/passwd",
                                        "/proc/self/fd/0",
                                        "/dev/zero",
                                        "/var/log/pods",
                                        "busybox",
                                        "sha256:",
                                        "k8s_",
                                        ":",
                                        "=",
                                        ",",
                                        "*",
                                        "-1",
                                        "0",
                                        "4294967296",
                                        "runtime/default",
                                        "localhost/",
                                        "unconfined",
                                        "SIGKILL",
                                        "rw",
                                        "rbind"};
  const std::string& piece = kPieces[rng() % (sizeof(kPieces) / sizeof(kPieces[0]))];
  switch (rng() % 6) {
    case 0:
      return piece;
    case 1:
      return v + piece;
    case 2:
      return piece + v;
    case 3:
      return v + "/" + piece;
    case 4:
      return std::string(1 + rng() % 300, "a/."[rng() % 3]);
    default: {
      // A byte mutation of the value alone (the result may not be UTF-8 and then not parse).
      v.resize(v.size() + 16);
      const size_t n =
          LLVMFuzzerMutate(reinterpret_cast<uint8_t*>(v.data()), v.size() - 16, v.size());
      v.resize(n);
      return v;
    }
  }
}

int64_t MutateNumber(int64_t v, std::minstd_rand& rng) {
  static const int64_t kValues[] = {0,          1,         -1,        2,         255,
                                    256,        65535,     65536,     INT32_MAX, INT32_MIN,
                                    UINT32_MAX, INT64_MAX, INT64_MIN, 1 << 20,   int64_t{1} << 40};
  // Near the value, wrapping around (as unsigned: no overflow).
  if (rng() % 3 == 0) return static_cast<int64_t>(static_cast<uint64_t>(v) + rng() % 5 - 2);
  return kValues[rng() % (sizeof(kValues) / sizeof(kValues[0]))];
}

// A number field of `m` changed (at < 0), its element `at` changed, or (repeated, at < 0) an
// element added, through the reflection accessors of its type.
template <typename T>
void SetNumber(Message* m, const FieldDescriptor* f, int at,
               T (Reflection::*get)(const Message&, const FieldDescriptor*) const,
               void (Reflection::*set)(Message*, const FieldDescriptor*, T) const,
               void (Reflection::*set_at)(Message*, const FieldDescriptor*, int, T) const,
               void (Reflection::*add)(Message*, const FieldDescriptor*, T) const,
               std::minstd_rand& rng) {
  const Reflection* r = m->GetReflection();
  if (at >= 0) {
    (r->*set_at)(m, f, at, static_cast<T>(MutateNumber(0, rng)));
  } else if (f->is_repeated()) {
    (r->*add)(m, f, static_cast<T>(MutateNumber(0, rng)));
  } else {
    (r->*set)(m, f, static_cast<T>(MutateNumber(static_cast<int64_t>((r->*get)(*m, f)), rng)));
  }
}

// One structured mutation of `req`; false when nothing could be changed.

}  // namespace

bool MutateRequest(Message* req, std::minstd_rand& rng) {
  std::vector<std::pair<Message*, const FieldDescriptor*>> fields;
  CollectFields(req, &fields);
  if (fields.empty()) return false;
  auto [m, f] = fields[rng() % fields.size()];
  const Reflection* r = m->GetReflection();
  const bool repeated = f->is_repeated();
  const int n = repeated ? r->FieldSize(*m, f) : 0;
  // A repeated field: change an element, or add one.
  const int at = repeated && n > 0 && rng() % 3 != 0 ? static_cast<int>(rng() % n) : -1;
  switch (f->cpp_type()) {
    case FieldDescriptor::CPPTYPE_STRING: {
      std::string v = at >= 0 ? r->GetRepeatedString(*m, f, at)
                              : (repeated ? std::string() : r->GetString(*m, f));
      v = MutateString(std::move(v), rng);
      if (at >= 0) {
        r->SetRepeatedString(m, f, at, std::move(v));
      } else if (repeated) {
        r->AddString(m, f, std::move(v));
      } else {
        r->SetString(m, f, std::move(v));
      }
      return true;
    }
    case FieldDescriptor::CPPTYPE_INT32:
      SetNumber<int32_t>(m, f, at, &Reflection::GetInt32, &Reflection::SetInt32,
                         &Reflection::SetRepeatedInt32, &Reflection::AddInt32, rng);
      return true;
    case FieldDescriptor::CPPTYPE_INT64:
      SetNumber<int64_t>(m, f, at, &Reflection::GetInt64, &Reflection::SetInt64,
                         &Reflection::SetRepeatedInt64, &Reflection::AddInt64, rng);
      return true;
    case FieldDescriptor::CPPTYPE_UINT32:
      SetNumber<uint32_t>(m, f, at, &Reflection::GetUInt32, &Reflection::SetUInt32,
                          &Reflection::SetRepeatedUInt32, &Reflection::AddUInt32, rng);
      return true;
    case FieldDescriptor::CPPTYPE_UINT64:
      SetNumber<uint64_t>(m, f, at, &Reflection::GetUInt64, &Reflection::SetUInt64,
                          &Reflection::SetRepeatedUInt64, &Reflection::AddUInt64, rng);
      return true;
    case FieldDescriptor::CPPTYPE_BOOL:
      if (repeated) return false;
      r->SetBool(m, f, !r->GetBool(*m, f));
      return true;
    case FieldDescriptor::CPPTYPE_ENUM: {
      const google::protobuf::EnumDescriptor* e = f->enum_type();
      // A value the enum names, or (proto3 enums are open) one it does not.
      const int v = rng() % 4 == 0 ? static_cast<int>(rng() % 1000) - 500
                                   : e->value(static_cast<int>(rng() % e->value_count()))->number();
      if (at >= 0) {
        r->SetRepeatedEnumValue(m, f, at, v);
      } else if (repeated) {
        r->AddEnumValue(m, f, v);
      } else {
        r->SetEnumValue(m, f, v);
      }
      return true;
    }
    case FieldDescriptor::CPPTYPE_MESSAGE:
      if (repeated) {
        // Another element: a copy of one there is (a second mount, port, ...), or an empty one.
        Message* added = r->AddMessage(m, f);
        if (n > 0) added->CopyFrom(r->GetRepeatedMessage(*m, f, static_cast<int>(rng() % n)));
      } else if (r->HasField(*m, f) && rng() % 2 == 0) {
        r->ClearField(m, f);
      } else {
        r->MutableMessage(m, f);  // present, with every field at its default
      }
      return true;
    default:
      return false;
  }
}

}  // namespace berth::server::fuzz
