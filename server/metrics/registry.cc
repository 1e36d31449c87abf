// Prometheus text exposition: HELP/TYPE lines, labelled samples, cumulative histogram buckets.
#include "server/metrics/registry.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace berth::metrics {
namespace {

std::string Labels(const std::vector<std::string>& names, const LabelValues& values,
                   const std::string& extra = "") {
  std::vector<std::string> parts;
  for (size_t i = 0; i < names.size() && i < values.size(); ++i) {
    parts.push_back(absl::StrCat(names[i], "=\"", EscapeLabel(values[i]), "\""));
  }
  if (!extra.empty()) parts.push_back(extra);
  if (parts.empty()) return "";
  std::string out = "{";
  for (size_t i = 0; i < parts.size(); ++i) absl::StrAppend(&out, i ? "," : "", parts[i]);
  return out + "}";
}

std::string Num(double v) {
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (v == std::floor(v) && std::fabs(v) < 1e15) return absl::StrCat(static_cast<int64_t>(v));
  return absl::StrFormat("%.9g", v);
}

// HELP text escapes only backslash and newline (a quote is literal there).
std::string EscapeHelp(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

}  // namespace

std::string EscapeLabel(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '"')
      out += "\\\"";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

Registry::Family& Registry::DeclareLocked(const std::string& name, const char* type,
                                          const std::string& help,
                                          std::vector<std::string> labels) {
  Family& f = families_[name];
  f.type = type;
  f.help = help;
  f.labels = std::move(labels);
  return f;
}

void Registry::DeclareCounter(const std::string& name, const std::string& help,
                              std::vector<std::string> labels) {
  absl::MutexLock l(&mu_);
  DeclareLocked(name, "counter", help, std::move(labels));
}

void Registry::DeclareHistogram(const std::string& name, const std::string& help,
                                std::vector<std::string> labels, std::vector<double> buckets) {
  absl::MutexLock l(&mu_);
  DeclareLocked(name, "histogram", help, std::move(labels)).buckets = std::move(buckets);
}

void Registry::DeclareGauge(const std::string& name, const std::string& help,
                            std::vector<std::string> labels, GaugeFn fn) {
  absl::MutexLock l(&mu_);
  DeclareLocked(name, "gauge", help, std::move(labels)).gauge = std::move(fn);
}

void Registry::Add(const std::string& name, const LabelValues& labels, double v) {
  absl::MutexLock l(&mu_);
  auto it = families_.find(name);
  if (it == families_.end() || it->second.type != "counter") return;
  it->second.values[labels] += v;
}

void Registry::Observe(const std::string& name, const LabelValues& labels, double v) {
  absl::MutexLock l(&mu_);
  auto it = families_.find(name);
  if (it == families_.end() || it->second.type != "histogram") return;
  Family& f = it->second;
  auto& counts = f.counts[labels];
  if (counts.empty()) counts.assign(f.buckets.size() + 1, 0);
  for (size_t i = 0; i < f.buckets.size(); ++i) {
    if (v <= f.buckets[i]) ++counts[i];
  }
  ++counts.back();
  f.sums[labels] += v;
}

std::string Registry::Render() const {
  // Gauge callbacks run outside the lock: they may take other locks (the engine's).
  std::map<std::string, std::vector<std::pair<LabelValues, double>>> gauges;
  std::map<std::string, Family> snapshot;
  {
    absl::MutexLock l(&mu_);
    snapshot = families_;
  }
  for (const auto& [name, f] : snapshot) {
    if (f.type == "gauge" && f.gauge) gauges[name] = f.gauge();
  }
  std::string out;
  for (const auto& [name, f] : snapshot) {
    absl::StrAppend(&out, "# HELP ", name, " ", EscapeHelp(f.help), "\n# TYPE ", name, " ", f.type,
                    "\n");
    if (f.type == "counter") {
      for (const auto& [lv, v] : f.values)
        absl::StrAppend(&out, name, Labels(f.labels, lv), " ", Num(v), "\n");
    } else if (f.type == "gauge") {
      for (const auto& [lv, v] : gauges[name])
        absl::StrAppend(&out, name, Labels(f.labels, lv), " ", Num(v), "\n");
    } else {
      for (const auto& [lv, counts] : f.counts) {
        for (size_t i = 0; i < f.buckets.size(); ++i) {
          absl::StrAppend(&out, name, "_bucket",
                          Labels(f.labels, lv, absl::StrCat("le=\"", Num(f.buckets[i]), "\"")), " ",
                          counts[i], "\n");
        }
        absl::StrAppend(&out, name, "_bucket", Labels(f.labels, lv, "le=\"+Inf\""), " ",
                        counts.back(), "\n");
        absl::StrAppend(&out, name, "_sum", Labels(f.labels, lv), " ", Num(f.sums.at(lv)), "\n");
        absl::StrAppend(&out, name, "_count", Labels(f.labels, lv), " ", counts.back(), "\n");
      }
    }
  }
  return out;
}

}  // namespace berth::metrics
