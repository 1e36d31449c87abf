// The failed-call log: what the request named is taken when it arrives, logged if the status
// going out is not OK.
#include "server/call_log.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "glog/logging.h"

namespace berth::server {
namespace {

using google::protobuf::FieldDescriptor;

// Names long enough to tell objects apart, short enough for one line.
std::string Clip(const std::string& s) { return s.size() > 128 ? s.substr(0, 128) + "…" : s; }

void AppendField(std::string* out, const std::string& key, const std::string& value) {
  if (value.empty()) return;
  absl::StrAppend(out, out->empty() ? "" : " ", key, "=", Clip(value));
}

class CallLog final : public grpc::experimental::Interceptor {
 public:
  explicit CallLog(std::string method) : method_(std::move(method)) {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* m) override {
    using H = grpc::experimental::InterceptionHookPoints;
    if (m->QueryInterceptionHookPoint(H::POST_RECV_MESSAGE) && request_.empty()) {
      // Every CRI message is a full protobuf Message (api.proto is not optimized for lite).
      if (const void* msg = m->GetRecvMessage(); msg != nullptr) {
        request_ = DescribeRequest(*static_cast<const google::protobuf::Message*>(msg));
      }
    }
    if (m->QueryInterceptionHookPoint(H::PRE_SEND_STATUS)) {
      grpc::Status st = m->GetSendStatus();
      // A watcher that hangs up (GetContainerEvents, streamed stats) is not a failure.
      if (!st.ok() && st.error_code() != grpc::StatusCode::CANCELLED) {
        LOG(WARNING) << method_ << " failed (" << st.error_code() << "): " << st.error_message()
                     << (request_.empty() ? "" : " [") << request_ << (request_.empty() ? "" : "]");
      }
    }
    m->Proceed();
  }

 private:
  std::string method_;
  std::string request_;
};

class Factory final : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    std::string m = info->method() ? info->method() : "";
    if (size_t slash = m.rfind('/'); slash != std::string::npos) m = m.substr(slash + 1);
    return std::make_unique<CallLog>(std::move(m)).release();  // gRPC owns it
  }
};

}  // namespace

std::string DescribeRequest(const google::protobuf::Message& request) {
  std::string out;
  const auto* d = request.GetDescriptor();
  const auto* r = request.GetReflection();
  for (int i = 0; i < d->field_count(); ++i) {
    const FieldDescriptor* f = d->field(i);
    if (f->is_repeated()) continue;
    if (f->type() == FieldDescriptor::TYPE_STRING && absl::EndsWith(f->name(), "_id")) {
      AppendField(&out, f->name(), r->GetString(request, f));
    } else if (f->type() == FieldDescriptor::TYPE_MESSAGE && r->HasField(request, f)) {
      const google::protobuf::Message& sub = r->GetMessage(request, f);
      // image.image (PullImage, ImageStatus, RemoveImage), config.metadata.name and
      // config.image.image (RunPodSandbox, CreateContainer).
      if (f->name() == "image") {
        if (const FieldDescriptor* img = sub.GetDescriptor()->FindFieldByName("image");
            img != nullptr && img->type() == FieldDescriptor::TYPE_STRING) {
          AppendField(&out, "image", sub.GetReflection()->GetString(sub, img));
        }
      } else if (f->name() == "config") {
        const auto* sd = sub.GetDescriptor();
        if (const FieldDescriptor* md = sd->FindFieldByName("metadata");
            md != nullptr && md->type() == FieldDescriptor::TYPE_MESSAGE &&
            sub.GetReflection()->HasField(sub, md)) {
          const auto& meta = sub.GetReflection()->GetMessage(sub, md);
          for (const char* key : {"name", "namespace"}) {
            if (const FieldDescriptor* kf = meta.GetDescriptor()->FindFieldByName(key);
                kf != nullptr && kf->type() == FieldDescriptor::TYPE_STRING) {
              AppendField(&out, key, meta.GetReflection()->GetString(meta, kf));
            }
          }
        }
        if (const FieldDescriptor* img = sd->FindFieldByName("image");
            img != nullptr && img->type() == FieldDescriptor::TYPE_MESSAGE &&
            sub.GetReflection()->HasField(sub, img)) {
          const auto& spec = sub.GetReflection()->GetMessage(sub, img);
          if (const FieldDescriptor* s = spec.GetDescriptor()->FindFieldByName("image");
              s != nullptr) {
            AppendField(&out, "image", spec.GetReflection()->GetString(spec, s));
          }
        }
      }
    }
  }
  return out;
}

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> CallLogInterceptorFactory() {
  return std::make_unique<Factory>();
}

}  // namespace berth::server
