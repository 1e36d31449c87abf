// lifecycle_bench's restart section: berthd SIGKILLed under many running containers and started
// again, timed to its socket answering Version and to ListContainers listing every container,
// next to what the old recovery spent (one `runc state` per container, serially).
#ifndef BERTH_BENCH_RESTART_SECTION_H_
#define BERTH_BENCH_RESTART_SECTION_H_

#include <string>

#include "nlohmann/json.hpp"
#include "test/util/berthd.h"

namespace berth::bench {

// `runc --root <runc_root> state <id>` for every container in runc's root, one after another
// (what recovery did per container before it read state.json itself), then the in-process
// reader over the same containers. Figures: runc's total and per-call times, the reader's
// total, the count of containers, and how many answers (status and pid) differ.
nlohmann::json RuncStateBaseline(const std::string& runc, const std::string& runc_root);

// SIGKILLs `berthd`, starts it with `options` and times, from the start, the socket answering
// Version and ListContainers returning `containers` entries; also the recovery time berthd
// logs. Keys are prefixed with `label`.
nlohmann::json TimeRestart(test::Berthd& berthd, const test::Berthd::Options& options,
                           size_t containers, const std::string& label);

}  // namespace berth::bench

#endif  // BERTH_BENCH_RESTART_SECTION_H_
