// A modified copy of netwatch's probes (a .bpf.o built outside the tree), loaded and measured next
// to the real ones in the same run: how a proposed change to bpf/netwatch.bpf.c is costed before
// anyone makes it. Only its tp_btf programs are loaded, with the object's default rodata.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

struct bpf_object;
struct bpf_link;
struct ring_buffer;

namespace netwatch::bench {

class CandidateObject {
 public:
  struct Program {
    std::string name;
    std::string tracepoint;  // from the section, "tp_btf/<tracepoint>"
    uint32_t id = 0;
  };

  // Throws FatalError when the object cannot be opened, loaded or attached.
  static std::unique_ptr<CandidateObject> load(const std::string& path);
  ~CandidateObject();
  CandidateObject(const CandidateObject&) = delete;
  CandidateObject& operator=(const CandidateObject&) = delete;

  const std::string& label() const { return label_; }  // "cand:<file name without .bpf.o>"
  const std::vector<Program>& programs() const { return programs_; }
  // Consumes its ring buffer ("events"), so it never fills and its submits cost what the real ones do.
  void drain();

 private:
  CandidateObject(bpf_object* obj, std::string label) : obj_(obj), label_(std::move(label)) {}

  bpf_object* obj_;
  std::string label_;
  std::vector<bpf_link*> links_;
  std::vector<Program> programs_;
  ring_buffer* ring_ = nullptr;
};

}  // namespace netwatch::bench
