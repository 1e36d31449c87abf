// A small Prometheus registry: labelled counters and histograms updated by berth, gauges read
// from callbacks at scrape time, rendered in the text exposition format (version 0.0.4).
#ifndef BERTH_SERVER_METRICS_REGISTRY_H_
#define BERTH_SERVER_METRICS_REGISTRY_H_

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"

namespace berth::metrics {

using LabelValues = std::vector<std::string>;

class Registry {
 public:
  // Families are declared once, before use; label values must match the declared names.
  void DeclareCounter(const std::string& name, const std::string& help,
                      std::vector<std::string> labels);
  void DeclareHistogram(const std::string& name, const std::string& help,
                        std::vector<std::string> labels, std::vector<double> buckets);
  using GaugeFn = std::function<std::vector<std::pair<LabelValues, double>>()>;
  void DeclareGauge(const std::string& name, const std::string& help,
                    std::vector<std::string> labels, GaugeFn fn);

  void Add(const std::string& name, const LabelValues& labels, double v = 1);
  void Observe(const std::string& name, const LabelValues& labels, double v);

  std::string Render() const;

 private:
  struct Family {
    std::string type, help;
    std::vector<std::string> labels;
    std::vector<double> buckets;
    GaugeFn gauge;
    std::map<LabelValues, double> values;                 // counters
    std::map<LabelValues, std::vector<uint64_t>> counts;  // histogram buckets (+Inf last)
    std::map<LabelValues, double> sums;
  };
  mutable absl::Mutex mu_;
  // The family `name`, (re)declared as `type` with `help` and `labels`.
  Family& DeclareLocked(const std::string& name, const char* type, const std::string& help,
                        std::vector<std::string> labels) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  std::map<std::string, Family> families_ ABSL_GUARDED_BY(mu_);
};

// Escapes a label value for the exposition format.
std::string EscapeLabel(const std::string& v);

}  // namespace berth::metrics

#endif  // BERTH_SERVER_METRICS_REGISTRY_H_
