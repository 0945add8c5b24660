#include "bench/candidate_object.h"

#include <bpf/libbpf.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "util/log.h"
#include "bench/bpf_run_time.h"

namespace netwatch::bench {
namespace {

constexpr std::string_view kTpBtf = "tp_btf/";

int ignore_record(void*, void*, size_t) {
  return 0;
}

}  // namespace

std::unique_ptr<CandidateObject> CandidateObject::load(const std::string& path) {
  bpf_object* obj = bpf_object__open_file(path.c_str(), nullptr);
  if (!obj) throw util::FatalError("opening candidate " + path + " failed: " + std::strerror(errno));
  std::string label = std::filesystem::path(path).filename().string();
  if (auto dot = label.find('.'); dot != std::string::npos) label.resize(dot);
  std::unique_ptr<CandidateObject> cand(new CandidateObject(obj, "cand:" + label));

  bpf_program* prog;
  bpf_object__for_each_program(prog, obj) {
    std::string_view sec = bpf_program__section_name(prog);
    bpf_program__set_autoload(prog, sec.rfind(kTpBtf, 0) == 0);
  }
  if (int err = bpf_object__load(obj))
    throw util::FatalError("loading candidate " + path + " failed: " + std::strerror(-err) + " (--verbose shows why)");
  bpf_object__for_each_program(prog, obj) {
    std::string_view sec = bpf_program__section_name(prog);
    if (sec.rfind(kTpBtf, 0) != 0) continue;
    bpf_link* link = bpf_program__attach(prog);
    if (!link)
      throw util::FatalError("attaching candidate program " + std::string(bpf_program__name(prog)) + " failed");
    cand->links_.push_back(link);
    cand->programs_.push_back(
        {bpf_program__name(prog), std::string(sec.substr(kTpBtf.size())), program_id(bpf_program__fd(prog))});
  }
  if (bpf_map* events = bpf_object__find_map_by_name(obj, "events");
      events && bpf_map__type(events) == BPF_MAP_TYPE_RINGBUF) {
    cand->ring_ = ring_buffer__new(bpf_map__fd(events), ignore_record, nullptr, nullptr);
    if (!cand->ring_) throw util::FatalError("reading candidate " + path + "'s ring buffer failed");
  }
  return cand;
}

CandidateObject::~CandidateObject() {
  ring_buffer__free(ring_);
  for (bpf_link* link : links_) bpf_link__destroy(link);
  bpf_object__close(obj_);
}

void CandidateObject::drain() {
  if (ring_) ring_buffer__consume(ring_);
}

}  // namespace netwatch::bench
